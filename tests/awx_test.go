package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/ksvla/lightagent/modules"
)

// credentialType is an AWX custom credential type as awx/credential_types/*.yml holds it: the
// name, kind, inputs and injectors AWX's API and UI take.
type credentialType struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description"`
	Kind        string `yaml:"kind" json:"kind"`
	Inputs      struct {
		Fields   []credentialField `yaml:"fields" json:"fields"`
		Required []string          `yaml:"required" json:"required"`
	} `yaml:"inputs" json:"inputs"`
	Injectors struct {
		Env       map[string]string `yaml:"env" json:"env"`
		File      map[string]string `yaml:"file" json:"file"`
		ExtraVars map[string]string `yaml:"extra_vars" json:"extra_vars"`
	} `yaml:"injectors" json:"injectors"`
}

type credentialField struct {
	ID        string `yaml:"id" json:"id"`
	Type      string `yaml:"type" json:"type"`
	Label     string `yaml:"label" json:"label"`
	Format    string `yaml:"format" json:"format,omitempty"`
	Secret    bool   `yaml:"secret" json:"secret"`
	Multiline bool   `yaml:"multiline" json:"multiline"`
	HelpText  string `yaml:"help_text" json:"help_text,omitempty"`
}

func loadCredentialType(t *testing.T, name string) credentialType {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(playtest.Root(), "awx", "credential_types", name))
	require.NoError(t, err)
	var ct credentialType
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // a misspelt key would silently do nothing in AWX
	require.NoError(t, dec.Decode(&ct), name)
	return ct
}

// awxVMwareEnv is what AWX's built-in "VMware vCenter" credential injects
// (awx/main/models/credential/injectors.py, vmware()): VMWARE_VALIDATE_CERTS comes from
// AWX's VMWARE_VALIDATE_CERTS setting, False unless an admin changed it.
func awxVMwareEnv(host, user, password string) map[string]string {
	return map[string]string{"VMWARE_HOST": host, "VMWARE_USER": user, "VMWARE_PASSWORD": password,
		"VMWARE_VALIDATE_CERTS": "False"}
}

// moduleEnv maps every environment variable some module option falls back to onto whether
// that option is no_log, from the registry's specs (sub-options included).
func moduleEnv() map[string]bool {
	out := map[string]bool{}
	var walk func(ansible.Spec)
	walk = func(s ansible.Spec) {
		for _, o := range s.Options {
			for _, e := range append(append([]string{}, o.EnvFallback...), o.EnvFileFallback...) {
				out[e] = out[e] || o.NoLog
			}
			if o.Options != nil {
				walk(*o.Options)
			}
		}
	}
	for _, e := range modules.Registry() {
		walk(e.New().Spec())
	}
	return out
}

// renderScript renders a credential type's injectors as AWX does (_inject_credential in
// awx/main/models/credential): Jinja's ImmutableSandboxedEnvironment over the inputs that are
// set, booleans not given default to False, SSH keys get a final newline, each file template
// goes to a 0600 mkstemp file in env/ and its path to tower.filename(.<name>). Jinja itself,
// not a re-implementation, decides what the templates mean. Inputs arrive on stdin, never in
// process arguments.
const renderScript = `
import json, os, stat, sys, tempfile
from types import SimpleNamespace
from jinja2.sandbox import ImmutableSandboxedEnvironment
req = json.load(sys.stdin)
ct, inputs = req["type"], req["inputs"]
ns = {k: v for k, v in inputs.items() if isinstance(v, bool) or v}
for f in ct["inputs"]["fields"] or []:
    if f["type"] == "boolean" and f["id"] not in inputs:
        ns[f["id"]] = False
    if f.get("format") == "ssh_private_key" and f["id"] in ns and not ns[f["id"]].endswith("\n"):
        ns[f["id"]] += "\n"
sandbox = ImmutableSandboxedEnvironment()
single, files = None, {}
for label, tmpl in (ct["injectors"]["file"] or {}).items():
    fd, path = tempfile.mkstemp(dir=req["env_dir"])
    with os.fdopen(fd, "w") as f:
        f.write(sandbox.from_string(tmpl).render(**ns))
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    if label == "template":
        single = path
    else:
        files[label.split(".", 1)[1]] = path
ns["tower"] = SimpleNamespace(filename=single or SimpleNamespace(**files))
json.dump({k: sandbox.from_string(v).render(**ns) for k, v in (ct["injectors"]["env"] or {}).items()}, sys.stdout)
`

// injectAWX returns the environment AWX injects for a credential of type ct with these inputs,
// writing file injections into envDir.
func injectAWX(t *testing.T, ct credentialType, inputs map[string]any, envDir string) map[string]string {
	t.Helper()
	req, err := json.Marshal(map[string]any{"type": ct, "inputs": inputs, "env_dir": envDir})
	require.NoError(t, err)
	cmd := exec.Command("python3", "-c", renderScript)
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "render %s injectors: %s", ct.Name, stderr.String())
	env := map[string]string{}
	require.NoError(t, json.Unmarshal(out, &env))
	return env
}

var templateVar = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_.]*`)

// The credential types inject only variables a module reads, feed no_log options only from
// secret fields, and use every field and file they declare.
func TestAWXCredentialTypes(t *testing.T) {
	read := moduleEnv()
	for name := range awxVMwareEnv("", "", "") {
		assert.Contains(t, read, name, "AWX's VMware credential injects %s: a module should read it", name)
	}
	for _, file := range []string{"ksc.yml", "svm.yml", "vcenter.yml", "inventory.yml"} {
		t.Run(file, func(t *testing.T) {
			ct := loadCredentialType(t, file)
			assert.NotEmpty(t, ct.Name)
			assert.Equal(t, "cloud", ct.Kind, "custom types are cloud or net; several cloud credentials can go on one job template")
			assert.Empty(t, ct.Injectors.ExtraVars, "secrets go through the environment, where modules read them")

			fields := map[string]credentialField{}
			for _, f := range ct.Inputs.Fields {
				fields[f.ID] = f
				assert.NotEmpty(t, f.Label, f.ID)
				assert.Contains(t, []string{"string", "boolean"}, f.Type, f.ID)
			}
			for _, r := range ct.Inputs.Required {
				assert.Contains(t, fields, r, "required input %s is not a field", r)
			}
			used := map[string]bool{}
			refs := func(tmpl string) []string {
				var out []string
				for _, w := range templateVar.FindAllString(tmpl, -1) {
					if _, ok := fields[w]; ok {
						used[w] = true
						out = append(out, w)
					}
				}
				return out
			}
			for label, tmpl := range ct.Injectors.File {
				require.True(t, strings.HasPrefix(label, "template."), "file injector %s: AWX names them template.<name>", label)
				refs(tmpl)
				assert.Regexp(t, `\{\{ *tower\.filename\.`+regexp.QuoteMeta(strings.TrimPrefix(label, "template."))+` *\}\}`,
					strings.Join(values(ct.Injectors.Env), "\n"), "file %s is written but no variable points at it", label)
			}
			for name, tmpl := range ct.Injectors.Env {
				noLog, ok := read[name]
				assert.True(t, ok, "%s is injected but no module reads it", name)
				isPath := strings.Contains(tmpl, "tower.filename") // the secret is in the file, the variable names it
				for _, f := range refs(tmpl) {
					if fields[f].Secret && !isPath {
						assert.True(t, noLog, "%s carries secret %s to an option that is not no_log", name, f)
					}
				}
				if noLog && !isPath {
					secret := false
					for _, f := range refs(tmpl) {
						secret = secret || fields[f].Secret
					}
					assert.True(t, secret, "%s feeds a no_log option from a field that is not secret", name)
				}
			}
			for id := range fields {
				assert.True(t, used[id], "field %s is asked for but never injected", id)
			}
		})
	}
}

// The injectors render as AWX renders them: optional inputs left empty inject empty values
// (which the modules treat as unset), files are written 0600 and pointed at only when there
// is content.
func TestAWXCredentialTypesRender(t *testing.T) {
	ksc, svm, vc := loadCredentialType(t, "ksc.yml"), loadCredentialType(t, "svm.yml"), loadCredentialType(t, "vcenter.yml")
	tests := []struct {
		name   string
		ct     credentialType
		inputs map[string]any
		want   map[string]string // "@file:<content>" means a 0600 file holding content
	}{
		{"ksc minimal", ksc, map[string]any{"url": "https://ksc:13299", "username": "u", "password": "p"},
			map[string]string{"KSC_URL": "https://ksc:13299", "KSC_USERNAME": "u", "KSC_PASSWORD_FILE": "@file:p", "KSC_INTERNAL_USER": "true",
				"KSC_CA_FILE": "", "KSC_FINGERPRINT": "", "KSC_VSERVER": ""}},
		{"ksc full", ksc, map[string]any{"url": "https://ksc:13299", "username": "DOM\\u", "password": "p", "domain_user": true,
			"certificate": "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----", "fingerprint": "AA:BB", "vserver": "tenant1"},
			map[string]string{"KSC_URL": "https://ksc:13299", "KSC_USERNAME": "DOM\\u", "KSC_PASSWORD_FILE": "@file:p", "KSC_INTERNAL_USER": "false",
				"KSC_CA_FILE": "@file:-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----", "KSC_FINGERPRINT": "AA:BB", "KSC_VSERVER": "tenant1"}},
		{"svm password", svm, map[string]any{"klconfig_password": "pw"},
			map[string]string{"KSVLA_KLCONFIG_PASSWORD_FILE": "@file:pw", "KSVLA_KLCONFIG_IMAGE_PASSWORD_FILE": "", "KSVLA_KLCONFIG_PRIVATE_KEY_FILE": ""}},
		{"svm first contact", svm, map[string]any{"klconfig_password": "pw", "image_password": "img"},
			map[string]string{"KSVLA_KLCONFIG_PASSWORD_FILE": "@file:pw", "KSVLA_KLCONFIG_IMAGE_PASSWORD_FILE": "@file:img", "KSVLA_KLCONFIG_PRIVATE_KEY_FILE": ""}},
		{"svm key", svm, map[string]any{"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----"},
			map[string]string{"KSVLA_KLCONFIG_PASSWORD_FILE": "", "KSVLA_KLCONFIG_IMAGE_PASSWORD_FILE": "",
				"KSVLA_KLCONFIG_PRIVATE_KEY_FILE": "@file:-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n"}},
		{"vcenter minimal", vc, map[string]any{"host": "vc.example.com", "username": "u", "password": "p"},
			map[string]string{"VMWARE_HOST": "vc.example.com", "VMWARE_USER": "u", "VMWARE_PASSWORD_FILE": "@file:p", "VMWARE_CA_FILE": "", "VMWARE_THUMBPRINT": ""}},
		{"vcenter full", vc, map[string]any{"host": "vc.example.com", "username": "u", "password": "p",
			"ca_certificate": "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----", "thumbprint": "AA:BB"},
			map[string]string{"VMWARE_HOST": "vc.example.com", "VMWARE_USER": "u", "VMWARE_PASSWORD_FILE": "@file:p",
				"VMWARE_CA_FILE": "@file:-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----", "VMWARE_THUMBPRINT": "AA:BB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			got := injectAWX(t, tt.ct, tt.inputs, dir)
			require.Len(t, got, len(tt.want))
			for name, want := range tt.want {
				content, isFile := strings.CutPrefix(want, "@file:")
				if !isFile {
					assert.Equal(t, got[name], want, name)
					continue
				}
				require.True(t, strings.HasPrefix(got[name], dir+string(filepath.Separator)), "%s=%q is not a file AWX wrote", name, got[name])
				b, err := os.ReadFile(got[name])
				require.NoError(t, err)
				assert.Equal(t, string(b), content, name)
				st, err := os.Stat(got[name])
				require.NoError(t, err)
				assert.Equal(t, st.Mode().Perm(), fs.FileMode(0o600), name)
			}
		})
	}
}

func values(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func galaxyVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(playtest.Root(), "galaxy.yml"))
	require.NoError(t, err)
	var g struct {
		Namespace, Name, Version string
	}
	require.NoError(t, yaml.Unmarshal(b, &g))
	require.Regexp(t, `^\d+\.\d+\.\d+$`, g.Version)
	return g.Version
}

// execution-environment.yml is an ansible-builder v3 definition that installs the tarball
// `make collection` built, copied into the build context, under a name that carries no version
// (a release must not need an edit here).
func TestAWXExecutionEnvironment(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(playtest.Root(), "execution-environment.yml"))
	require.NoError(t, err)
	var ee struct {
		Version int `yaml:"version"`
		Images  struct {
			BaseImage struct {
				Name string `yaml:"name"`
			} `yaml:"base_image"`
		} `yaml:"images"`
		Dependencies struct {
			Galaxy struct {
				Collections []struct {
					Name string `yaml:"name"`
					Type string `yaml:"type"`
				} `yaml:"collections"`
			} `yaml:"galaxy"`
		} `yaml:"dependencies"`
		AdditionalBuildFiles []struct {
			Src  string `yaml:"src"`
			Dest string `yaml:"dest"`
		} `yaml:"additional_build_files"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&ee))

	assert.Equal(t, 3, ee.Version, "ansible-builder reads a file without version: 3 as the v1 schema")
	assert.Regexp(t, `^[a-z0-9.-]+(:\d+)?/[a-z0-9._/-]+:[A-Za-z0-9._-]+$`, ee.Images.BaseImage.Name)
	assert.NotContains(t, ee.Images.BaseImage.Name, ":latest", "pin the base image: a job must not change under a rebuild")

	tarball := "ksvla-lightagent.tar.gz"
	assert.NotContains(t, string(b), galaxyVersion(t), "the EE definition must not hard-code the version")
	require.Len(t, ee.Dependencies.Galaxy.Collections, 1)
	c := ee.Dependencies.Galaxy.Collections[0]
	assert.Equal(t, "file", c.Type)
	assert.Equal(t, tarball, filepath.Base(c.Name), "the EE must install the tarball `make collection` writes")
	require.Len(t, ee.AdditionalBuildFiles, 1)
	f := ee.AdditionalBuildFiles[0]
	assert.Equal(t, "dist/"+tarball, f.Src, "where `make collection` writes the tarball")
	assert.Equal(t, filepath.Join(f.Dest, tarball), c.Name, "the requirement names the copied file")
}

// buildTarball builds the collection tarball as `make collection` does (the staging script,
// then ansible-galaxy collection build) from the freshly built binary, in a directory of its
// own so that tests running at the same time never share build/ or dist/.
func buildTarball(ctx context.Context, t *testing.T) string {
	t.Helper()
	lib, err := playtest.Modules()
	require.NoError(t, err)
	stage, out := t.TempDir(), t.TempDir()
	b, err := exec.CommandContext(ctx, "bash", filepath.Join(playtest.Root(), "tests", "stage-collection.sh"),
		filepath.Join(lib, "ksvla"), stage, "--copy").CombinedOutput()
	require.NoError(t, err, string(b))
	build := exec.CommandContext(ctx, "ansible-galaxy", "collection", "build", "--output-path", out)
	build.Dir = filepath.Join(stage, "ansible_collections", "ksvla", "lightagent")
	b, err = build.CombinedOutput()
	require.NoError(t, err, string(b))
	tarballs, _ := filepath.Glob(filepath.Join(out, "ksvla-lightagent-*.tar.gz"))
	require.Len(t, tarballs, 1)
	return tarballs[0]
}

// privateDataDir lays out an ansible-runner private data dir as AWX does for a job: project/
// (the project checkout), inventory/hosts, env/extravars (the job template's extra vars),
// env/envvars (what the credentials inject), env/passwords, env/settings, and the project's
// collections installed from the tarball into requirements_collections, which the job's
// ANSIBLE_COLLECTIONS_PATH names.
func privateDataDir(ctx context.Context, t *testing.T, extravars map[string]any, envvars map[string]string) string {
	t.Helper()
	pdd := t.TempDir()
	root := playtest.Root()
	for _, d := range []string{"project", "inventory", "env"} {
		require.NoError(t, os.MkdirAll(filepath.Join(pdd, d), 0o700))
	}
	require.NoError(t, os.CopyFS(filepath.Join(pdd, "project", "playbooks"), os.DirFS(filepath.Join(root, "playbooks"))))
	cfg, err := os.ReadFile(filepath.Join(root, "ansible.cfg"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(pdd, "project", "ansible.cfg"), cfg, 0o644))

	require.NoError(t, os.WriteFile(filepath.Join(pdd, "inventory", "hosts"),
		[]byte("localhost ansible_connection=local ansible_python_interpreter=\"{{ ansible_playbook_python }}\"\n"), 0o600))

	colls := filepath.Join(pdd, "requirements_collections")
	b, err := exec.CommandContext(ctx, "ansible-galaxy", "collection", "install", "-p", colls, buildTarball(ctx, t)).CombinedOutput()
	require.NoError(t, err, string(b))
	env := map[string]string{"ANSIBLE_COLLECTIONS_PATH": colls, "ANSIBLE_NOCOLOR": "1"}
	for k, v := range envvars {
		env[k] = v
	}
	for name, v := range map[string]any{
		"extravars": extravars,
		"envvars":   env,
		// AWX writes prompt -> answer pairs here for machine, become and vault credentials;
		// this job has none of those, its secrets come in through envvars.
		"passwords": map[string]string{},
		"settings":  map[string]any{"job_timeout": 300, "suppress_ansible_output": true},
	} {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(pdd, "env", name), b, 0o600))
	}
	return pdd
}

// jobEvent is one of ansible-runner's artifacts/<ident>/job_events/*.json.
type jobEvent struct {
	Counter   int    `json:"counter"`
	Event     string `json:"event"`
	Stdout    string `json:"stdout"` // what the event printed
	EventData struct {
		Task       string         `json:"task"`
		TaskAction string         `json:"task_action"`
		Host       string         `json:"host"`
		Res        map[string]any `json:"res"`
		OK         map[string]int `json:"ok"`
		Failures   map[string]int `json:"failures"`
	} `json:"event_data"`
}

func readJobEvents(t *testing.T, dir string) []jobEvent {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "job_events", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var out []jobEvent
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var e jobEvent
		require.NoError(t, json.Unmarshal(b, &e), f)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Counter < out[j].Counter })
	return out
}

// artifactLeaks lists "file: secret" for every file under dir that holds one of secrets. No
// exception: ansible-runner records the job's whole process environment in
// artifacts/<ident>/command, so the credential types inject passwords as files and the
// environment holds their paths only.
func artifactLeaks(dir string, secrets map[string]string) ([]string, error) {
	var leaks []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		for name, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				leaks = append(leaks, rel+": "+name)
			}
		}
		return nil
	})
	sort.Strings(leaks)
	return leaks, err
}

// labExtraVars is the lab's vars.yml as a job template's extra vars: without what the
// credentials carry (vCenter host, user and password; everything KSC; the klconfig password),
// and without vcenter_validate_certs, so the playbooks' own default (true) holds.
func labExtraVars(t *testing.T, v sim.Vars) map[string]any {
	t.Helper()
	b, err := yaml.Marshal(v)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, yaml.Unmarshal(b, &out))
	for _, k := range []string{"vcenter_hostname", "vcenter_username", "vcenter_password", "vcenter_validate_certs",
		"ksc_url", "ksc_username", "ksc_password", "ksc_ca_file", "ksc_fingerprint", "svm_klconfig_password"} {
		require.Contains(t, out, k)
		delete(out, k)
	}
	return out
}

// status.yml runs through ansible-runner as an AWX job does: private data dir laid out by
// AWX's rules, credentials injected exactly as AWX injects our three custom credential
// types, the collection installed from the built tarball, verbosity 4. The job
// events show the module's result, and no secret is anywhere in the artifacts.
func TestAWXRunnerStatus(t *testing.T) {
	t.Parallel() // overlaps the other slow end-to-end test: ansible-runner and ansible-lint share nothing
	if testing.Short() {
		t.Skip("builds the collection and runs a job through ansible-runner")
	}
	if _, err := exec.LookPath("ansible-runner"); err != nil {
		t.Fatalf("ansible-runner is missing: run tests/deps.sh (Debian's python3-ansible-runner): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	lab := labtest.Start(t, sim.Config{})
	v := lab.Vars(lab.Dir())
	secrets := map[string]string{"vCenter password": v.VCenterPassword, "KSC password": v.KSCPassword,
		"klconfig password": v.SVMKlconfigPassword}
	for name, s := range secrets {
		require.GreaterOrEqual(t, len(s), 8, "%s too short to scan for", name)
	}
	caPEM, err := os.ReadFile(v.KSCCAFile)
	require.NoError(t, err)

	pdd := privateDataDir(ctx, t, labExtraVars(t, v), nil)
	// The credentials' files go into env/, where AWX writes them, before envvars is final.
	injected := injectAWX(t, loadCredentialType(t, "vcenter.yml"), map[string]any{
		"host": v.VCenterHostname, "username": v.VCenterUsername, "password": v.VCenterPassword,
	}, filepath.Join(pdd, "env"))
	for k, val := range injectAWX(t, loadCredentialType(t, "ksc.yml"), map[string]any{
		"url": v.KSCURL, "username": v.KSCUsername, "password": v.KSCPassword, "certificate": string(caPEM),
	}, filepath.Join(pdd, "env")) {
		injected[k] = val
	}
	for k, val := range injectAWX(t, loadCredentialType(t, "svm.yml"), map[string]any{
		"klconfig_password": v.SVMKlconfigPassword,
	}, filepath.Join(pdd, "env")) {
		injected[k] = val
	}
	var envvars map[string]string
	b, err := os.ReadFile(filepath.Join(pdd, "env", "envvars"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &envvars))
	for k, val := range injected {
		envvars[k] = val
	}
	b, err = json.Marshal(envvars)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(pdd, "env", "envvars"), b, 0o600))

	const ident = "awx-status"
	cmd := exec.CommandContext(ctx, "ansible-runner", "run", pdd, "-p", "playbooks/status.yml", "--ident", ident, "-vvvv")
	out, err := cmd.CombinedOutput()
	art := filepath.Join(pdd, "artifacts", ident)
	stdout, _ := os.ReadFile(filepath.Join(art, "stdout"))
	require.NoError(t, err, "%s\n%s", out, stdout)

	status, err := os.ReadFile(filepath.Join(art, "status"))
	require.NoError(t, err)
	assert.Equal(t, "successful", strings.TrimSpace(string(status)), string(stdout))
	assert.Contains(t, string(stdout), "Using module file "+filepath.Join(pdd, "requirements_collections",
		"ansible_collections", "ksvla", "lightagent", "binaries", "ksvla_"+runtime.GOOS+"_"+runtime.GOARCH),
		"the module must come from the collection installed from the tarball")

	events := readJobEvents(t, art)
	var facts, stats []jobEvent
	for _, e := range events {
		assert.NotEqual(t, "runner_on_failed", e.Event, "task %q failed: %v", e.EventData.Task, e.EventData.Res["msg"])
		assert.NotEqual(t, "runner_on_unreachable", e.Event)
		switch {
		case e.Event == "runner_on_ok" && e.EventData.TaskAction == "ksvla.lightagent.agent_facts":
			facts = append(facts, e)
		case e.Event == "playbook_on_stats":
			stats = append(stats, e)
		}
	}
	require.Len(t, facts, 1, "one ok event of the agent_facts task")
	assert.Equal(t, "Read the fleet", facts[0].EventData.Task)
	ksvla, _ := facts[0].EventData.Res["ansible_facts"].(map[string]any)["ksvla"].(map[string]any)
	hvs, _ := ksvla["hypervisors"].([]any)
	assert.Len(t, hvs, len(v.ESXiHosts), "agent_facts reported every hypervisor of the lab")
	require.Len(t, stats, 1)
	assert.Empty(t, stats[0].EventData.Failures)
	assert.Equal(t, 3, stats[0].EventData.OK["localhost"], "three tasks ok")

	leaks, err := artifactLeaks(filepath.Join(pdd, "artifacts"), secrets)
	require.NoError(t, err)
	assert.Empty(t, leaks, "secrets in runner artifacts")
	// The job's recorded environment names the password files, and holds no password.
	var command struct {
		Env map[string]string `json:"env"`
	}
	b, err = os.ReadFile(filepath.Join(art, "command"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &command))
	for _, name := range []string{"VMWARE_PASSWORD_FILE", "KSC_PASSWORD_FILE", "KSVLA_KLCONFIG_PASSWORD_FILE"} {
		assert.True(t, strings.HasPrefix(command.Env[name], filepath.Join(pdd, "env")+"/"), "%s=%q", name, command.Env[name])
	}
	for _, name := range []string{"VMWARE_PASSWORD", "KSC_PASSWORD", "KSVLA_KLCONFIG_PASSWORD", "KSVLA_KLCONFIG_IMAGE_PASSWORD"} {
		assert.NotContains(t, command.Env, name)
	}
	st, err := os.Stat(filepath.Join(art, "command"))
	require.NoError(t, err)
	assert.Equal(t, st.Mode().Perm(), fs.FileMode(0o600), "runner's record of the job environment must be private")
	var names []string
	_ = filepath.WalkDir(art, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(path, "job_events") {
			names = append(names, strings.TrimPrefix(path, art+"/"))
		}
		return err
	})
	t.Logf("scanned %d job events and %v", len(events), names)

	// The check can fail: a secret planted anywhere in a copy of these artifacts is found.
	plants := []struct{ name, file, at string }{
		{"stdout", "stdout", ""},
		{"job event", filepath.Join("job_events", filepath.Base(firstEventFile(t, art))), ""},
		{"command line", "command", `"command": [`},
		{"other variable", "command", `"env": {`},
	}
	for _, p := range plants {
		t.Run("scanner catches a secret in "+p.name, func(t *testing.T) {
			cp := t.TempDir()
			require.NoError(t, os.CopyFS(cp, os.DirFS(filepath.Join(pdd, "artifacts"))))
			path := filepath.Join(cp, ident, p.file)
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			planted := `"leak ` + v.KSCPassword + `", `
			if p.at == "" {
				data = append(data, planted...)
			} else {
				var cmd map[string]any
				require.NoError(t, json.Unmarshal(data, &cmd))
				if p.name == "command line" {
					cmd["command"] = append(cmd["command"].([]any), "-e", "ksc_password="+v.KSCPassword)
				} else {
					cmd["env"].(map[string]any)["DEBUG_COPY"] = v.KSCPassword
				}
				data, err = json.Marshal(cmd)
				require.NoError(t, err)
			}
			require.NoError(t, os.WriteFile(path, data, 0o600))
			leaks, err := artifactLeaks(cp, secrets)
			require.NoError(t, err)
			assert.Equal(t, leaks, []string{filepath.Join(ident, p.file) + ": KSC password"})
		})
	}
}

func firstEventFile(t *testing.T, art string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(art, "job_events", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	sort.Strings(files)
	return files[0]
}
