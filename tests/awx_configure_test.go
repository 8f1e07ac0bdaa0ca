package tests

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// ansiblePython is the interpreter ansible-playbook runs with (its shebang): the one that can
// import ansible and Debian's awx.awx collection.
func ansiblePython(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("ansible-playbook")
	require.NoError(t, err, "ansible-playbook missing: run tests/deps.sh")
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	require.NotEmpty(t, fields, "no shebang in %s", path)
	return fields[0]
}

// validateAWX runs tests/awx/validate_awx.py on a configure playbook with the example
// variables plus placeholders for the vaulted passwords.
func validateAWX(t *testing.T, playbook string) (string, error) {
	t.Helper()
	root := playtest.Root()
	example, err := os.ReadFile(filepath.Join(root, "awx", "configure-vars.example.yml"))
	require.NoError(t, err)
	vars := filepath.Join(t.TempDir(), "vars.yml")
	require.NoError(t, os.WriteFile(vars, append(example,
		[]byte("vault_vcenter_password: Vc-Secret-1\nvault_ksc_password: Ksc-Secret-2\nvault_svm_klconfig_password: Svm-Secret-3\nvault_svm_image_klconfig_password: Img-Secret-4\n")...), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, ansiblePython(t), filepath.Join(root, "tests", "awx", "validate_awx.py"), playbook, vars).CombinedOutput()
	for _, secret := range []string{"Vc-Secret-1", "Ksc-Secret-2", "Svm-Secret-3", "Img-Secret-4"} {
		assert.NotContains(t, string(out), secret)
	}
	return string(out), err
}

// awx/configure.yml's AWX objects are valid for awx.awx: every task's arguments, templated with
// the example variables, pass the module's own argument spec and rules (ArgumentSpecValidator);
// the same check rejects a copy with an unknown option, a bad choice and a missing requirement.
func TestAWXConfigureMatchesAWXModuleSpecs(t *testing.T) {
	root := playtest.Root()
	configure := filepath.Join(root, "awx", "configure.yml")
	out, err := validateAWX(t, configure)
	require.NoError(t, err, out)
	assert.Contains(t, out, "16 awx.awx calls checked, 0 invalid", out)
	for _, m := range []string{"execution_environment", "credential_type", "credential", "project", "inventory", "host", "inventory_source", "job_template"} {
		assert.Contains(t, out, "(awx.awx."+m+")", "configure.yml creates the %s", m)
	}

	// Every credential type file is created, and the survey asks only what upgrade.yml reads.
	types, _ := filepath.Glob(filepath.Join(root, "awx", "credential_types", "*.yml"))
	b, err := os.ReadFile(configure)
	require.NoError(t, err)
	for _, ct := range types {
		assert.Contains(t, string(b), "credential_types/"+filepath.Base(ct), "configure.yml skips %s", ct)
	}
	var plays []struct {
		Tasks []map[string]any `yaml:"tasks"`
	}
	require.NoError(t, yaml.Unmarshal(b, &plays))
	upgrade, err := os.ReadFile(filepath.Join(root, "playbooks", "upgrade.yml"))
	require.NoError(t, err)
	questions := 0
	for _, task := range plays[0].Tasks {
		loop, _ := task["loop"].([]any)
		for _, item := range loop {
			jt, _ := item.(map[string]any)
			survey, _ := jt["survey"].(map[string]any)
			spec, _ := survey["spec"].([]any)
			for _, q := range spec {
				qm := q.(map[string]any)
				v := qm["variable"].(string)
				assert.Contains(t, string(upgrade), v, "survey variable %s is not used by upgrade.yml", v)
				// What AWX's survey validation (SurveyJobTemplateMixin) requires of a question.
				assert.NotEmpty(t, qm["question_name"], v)
				assert.Contains(t, []any{"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}, qm["type"], v)
				assert.IsType(t, true, qm["required"], v)
				if qm["type"] == "multiplechoice" {
					assert.Contains(t, qm["choices"], qm["default"], "%s: default not among the choices", v)
				}
				if qm["type"] == "integer" {
					d, lo, hi := qm["default"].(int), qm["min"].(int), qm["max"].(int)
					assert.True(t, lo <= d && d <= hi, "%s: default %d outside %d..%d", v, d, lo, hi)
				}
				questions++
			}
		}
	}
	assert.Positive(t, questions)

	planted := strings.NewReplacer(
		"        scm_type: git\n", "        scm_typ: git\n",
		"        job_type: run\n", "        job_type: runn\n",
		"        pull: missing\n", "        pull: sometimes\n",
	).Replace(string(b))
	bad := filepath.Join(t.TempDir(), "configure.yml")
	require.NoError(t, os.WriteFile(bad, []byte(planted), 0o644))
	require.NoError(t, os.CopyFS(filepath.Join(filepath.Dir(bad), "credential_types"), os.DirFS(filepath.Join(root, "awx", "credential_types"))))
	out, err = validateAWX(t, bad)
	require.Error(t, err, out)
	assert.Regexp(t, `INVALID Project .*scm_typ`, out)
	assert.Regexp(t, `INVALID Job templates \[KSVLA upgrade\] .*job_type`, out)
	assert.Regexp(t, `INVALID Execution environment .*pull`, out)
	assert.Contains(t, out, "5 invalid", "the 3 job templates and the 2 other planted faults")
}
