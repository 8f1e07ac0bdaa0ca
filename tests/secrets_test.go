package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/klconfig"
	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/kscsim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
)

// cmdlines samples /proc/*/cmdline every interval until stopped, keeping
// each distinct command line once: a secret passed as a process argument
// is visible to every local user for as long as the process runs.
type cmdlines struct {
	mu   sync.Mutex
	seen map[string]bool
	n    int // samples taken
	stop chan struct{}
	done chan struct{}
}

func sampleCmdlines(interval time.Duration) *cmdlines {
	c := &cmdlines{seen: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			c.sample()
			select {
			case <-c.stop:
				return
			case <-t.C:
			}
		}
	}()
	return c
}

func (c *cmdlines) sample() {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline") // the pattern is valid
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue // the process ended between the glob and the read
		}
		c.seen[string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))] = true
	}
}

// Stop ends sampling and returns the command lines seen and the number of
// samples.
func (c *cmdlines) Stop() ([]string, int) {
	close(c.stop)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.seen))
	for l := range c.seen {
		out = append(out, l)
	}
	return out, c.n
}

// filesUnder returns every regular file under dir but the skipped names.
func filesUnder(t *testing.T, dir string, skip ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		for _, s := range skip {
			if d.Name() == s {
				return nil
			}
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[p] = string(b)
		return nil
	})
	require.NoError(t, err)
	return out
}

// passwordPlaybook changes one SVM's klconfig and root passwords (and
// back on the second play), so the new passwords pass through the module.
const passwordPlaybook = `- name: Change the passwords of one SVM and back
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files: ["{{ lab_vars }}"]
  module_defaults:
    svm_klconfig:
      host: "{{ svm_host }}"
      port: "{{ svm_ssh_port }}"
      known_hosts: "{{ svm_known_hosts }}"
      record_path: "{{ record_path }}"
      # A new SVM: its host key is the one recorded on its VM at first contact.
      vm: "{{ svm_vm }}"
      datacenter: "{{ vcenter_datacenter }}"
      vcenter:
        hostname: "{{ vcenter_hostname }}"
        port: "{{ vcenter_port }}"
        username: "{{ vcenter_username }}"
        password: "{{ vcenter_password }}"
        ca_file: "{{ vcenter_ca_file }}"
  tasks:
    - name: Set new passwords
      svm_klconfig:
        password: "{{ svm_klconfig_password }}"
        passwords: {klconfig: "{{ new_klconfig_password }}", root: "{{ new_root_password }}"}
    - name: Log in with the new password, set the old one back
      svm_klconfig:
        password: "{{ new_klconfig_password }}"
        passwords: {klconfig: "{{ svm_klconfig_password }}"}
    - name: A wrong password fails
      svm_klconfig:
        password: "{{ new_klconfig_password }}"
        timezone: UTC
      ignore_errors: true
`

// Every playbook and module, succeeding and failing, at -vvvv: no secret
// (vCenter, KSC, SVM klconfig passwords, the new passwords set through
// svm_klconfig, wrong passwords tried) appears in the output, the results,
// the lab's files (but vars.yml, its secret store), the klconfig records,
// the status page, or any process's command line while the runs go on.
func TestSecretsNeverLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1})
	v := l.Vars(l.Dir())
	labVars := filepath.Join(l.Dir(), "vars.yml")
	work := t.TempDir()
	records := filepath.Join(work, "records")
	statusHTML := filepath.Join(work, "status.html")

	const newKlconfig, newRoot = `N3w;Kl"config'Pass`, "N3w-R00t-Secret"
	wrong := map[string]any{"vcenter_password": "Wr0ng-VC-Secret-1", "ksc_password": "Wr0ng-KSC-Secret-2"}
	wrongFile := filepath.Join(work, "wrong.json")
	raw, err := json.Marshal(wrong)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(wrongFile, raw, 0o600))
	pwVars := filepath.Join(work, "passwords.json")
	raw, err = json.Marshal(map[string]any{"new_klconfig_password": newKlconfig, "new_root_password": newRoot})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(pwVars, raw, 0o600))
	pwBook := filepath.Join(work, "passwords.yml")
	require.NoError(t, os.WriteFile(pwBook, []byte(passwordPlaybook), 0o644))

	secrets := append(labSecrets(l), newKlconfig, newRoot, wrong["vcenter_password"].(string), wrong["ksc_password"].(string))

	labArgs := []string{"-e", "@" + labVars}
	// A record KSC keeps for an SVM whose VM is gone, for ksc_purge.
	const goneSVM = "svm-esxi-09-6.1"
	l.KSC().UpsertHost(kscsim.Host{DisplayName: goneSVM, IP: "10.9.9.9", LastVisible: time.Now().Add(-time.Hour),
		Products: []kscsim.Product{{Key: v.PSProductKey, Version: v.OldVersion, ProdVersion: v.OldVersion}}})
	l.KSC().UpsertHost(kscsim.Host{DisplayName: "svm-esxi-08-6.1", IP: "10.9.9.8"})
	testVars := map[string]any{"lab_vars": labVars, "record_path": records}
	const failingVM = "vm-esxi-02-001"
	type step struct {
		name string
		o    playtest.Options
		ok   bool // the play is meant to succeed
	}
	steps := []step{
		{"status", playtest.Options{Playbook: "playbooks/status.yml", Args: append(labArgs, "-e", "status_html="+statusHTML)}, true},
		{"status with wrong passwords", playtest.Options{Playbook: "playbooks/status.yml", Args: append(labArgs, "-e", "@"+wrongFile)}, false},
		{"svm_klconfig", playtest.Options{Playbook: "tests/playbooks/svm_klconfig.yml", ExtraVars: testVars}, true},
		{"svm_deploy", playtest.Options{Playbook: "tests/playbooks/svm_deploy.yml", ExtraVars: testVars}, true},
		// The new SVMs run, the agents lag: the removal fails (ignored by the play).
		{"svm_remove refused", playtest.Options{Playbook: "tests/playbooks/svm_remove_refused.yml", ExtraVars: testVars}, true},
		{"upgrade", playtest.Options{Playbook: "playbooks/upgrade.yml", Args: append(append([]string{}, labArgs...), upgradeArgs...)}, true},
		{"upgrade with wrong passwords", playtest.Options{Playbook: "playbooks/upgrade.yml",
			Args: append(append([]string{}, labArgs...), append(upgradeArgs, "-e", "@"+wrongFile)...)}, false},
		{"ksc_task", playtest.Options{Playbook: "tests/playbooks/ksc_task.yml", ExtraVars: testVars}, true},
		// KSC fails the task on one VM (set below): the result names it.
		{"ksc_task failed targets", playtest.Options{Playbook: "tests/playbooks/ksc_task_failed_targets.yml", ExtraVars: labtest.Args(testVars,
			map[string]any{"failing_vm": failingVM, "failure": "Installation package not found"})}, true},
		{"svm_remove", playtest.Options{Playbook: "tests/playbooks/svm_remove.yml", ExtraVars: testVars}, true},
		// Removes a gone SVM's record, refuses (ignored) a running one's.
		{"ksc_purge", playtest.Options{Playbook: "tests/playbooks/ksc_purge.yml", ExtraVars: labtest.Args(testVars,
			map[string]any{"gone_svm": goneSVM, "running_svm": v.SVMs[v.ESXiHosts[0]]})}, true},
		// Every diff printed (--diff): a record purged, a task planned.
		{"diffs", playtest.Options{Playbook: "tests/playbooks/diffs.yml", Diff: true, ExtraVars: labtest.Args(testVars,
			map[string]any{"leftover": "svm-esxi-08-6.1"})}, true},
		{"passwords", playtest.Options{Playbook: pwBook, ExtraVars: labtest.Args(testVars, map[string]any{"svm_host": "", "svm_vm": v.SVMs[v.ESXiHosts[0]]}),
			Args: []string{"-e", "@" + pwVars}}, true},
	}
	// Every tests/playbooks/*.yml runs above.
	books, err := filepath.Glob(filepath.Join(playtest.Root(), "tests", "playbooks", "*.yml"))
	require.NoError(t, err)
	for _, b := range books {
		rel := "tests/playbooks/" + filepath.Base(b)
		found := false
		for _, s := range steps {
			found = found || s.o.Playbook == rel
		}
		assert.True(t, found, "%s is not run by the secrets test", rel)
	}

	procs := sampleCmdlines(50 * time.Millisecond)
	var outputs []string
	for _, s := range steps {
		if s.name == "passwords" {
			// The first SVM the upgrade deployed, at its current address.
			sv := l.SVM(v.SVMs[v.ESXiHosts[0]])
			require.NotNil(t, sv)
			s.o.ExtraVars["svm_host"] = sv.IP()
		}
		if s.name == "ksc_task failed targets" {
			l.KSC().SetFailTasksOn(map[string]string{failingVM: s.o.ExtraVars["failure"].(string)})
		}
		s.o.Verbosity = 4
		start := time.Now()
		run, err := playtest.Playbook(ctx, s.o)
		l.KSC().SetFailTasksOn(nil)
		require.NoError(t, err, s.name)
		t.Logf("%s: exit %d in %s", s.name, run.ExitCode, time.Since(start).Round(time.Millisecond))
		if s.ok {
			require.Zero(t, run.ExitCode, "%s:\n%s", s.name, tail(run.Output))
		} else {
			require.NotZero(t, run.ExitCode, "%s was meant to fail:\n%s", s.name, tail(run.Output))
		}
		results, err := json.Marshal(run.Tasks)
		require.NoError(t, err)
		outputs = append(outputs, run.Output, string(results))
		assert.Contains(t, run.Output, "<localhost> ", "%s: -vvvv output is there", s.name)
	}
	lines, samples := procs.Stop()
	assert.Greater(t, samples, 20, "the command lines were sampled during the runs")
	sawModule := false
	for _, line := range lines {
		sawModule = sawModule || strings.Contains(line, "ansible-tmp-") // the shell that runs a module
	}
	assert.True(t, sawModule, "the sampler caught module processes")

	sv := l.SVM(v.SVMs[v.ESXiHosts[0]]).State()
	assert.Equal(t, 3, sv.PasswordChanges["klconfig"], "the image's password replaced at first contact, then the new one set, then the old one")
	assert.Equal(t, 1, sv.PasswordChanges["root"])

	files := filesUnder(t, l.Dir(), "vars.yml")
	for p, c := range filesUnder(t, records) {
		files[p] = c
	}
	html, err := os.ReadFile(statusHTML)
	require.NoError(t, err)
	files[statusHTML] = string(html)
	require.NotEmpty(t, filesUnder(t, records), "the klconfig records were written")

	for _, secret := range secrets {
		for i, out := range outputs {
			assert.NotContains(t, out, secret, "run %d (%s) output", i/2, steps[i/2].name)
		}
		for p, c := range files {
			assert.NotContains(t, c, secret, "file %s", p)
		}
		for _, line := range lines {
			assert.NotContains(t, line, secret, "a command line")
		}
	}
}

// klconfigTarget is one lab SVM: its address and the arguments that reach
// it.
func klconfigTarget(t *testing.T, l *sim.Lab) (sim.Vars, string) {
	t.Helper()
	v := l.Vars(l.Dir())
	sv := l.SVM(l.VCenter().Inventory().Hosts[0].OldSVM)
	require.NotNil(t, sv)
	return v, sv.IP()
}

// Values with quotes, spaces, `;` or line breaks in any option that
// reaches a klconfig command are refused before anything is sent: the
// SVM's results log does not move.
func TestSecretInjectionRefused(t *testing.T) {
	ctx := faultCtx(t)
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: -1})
	v, ip := klconfigTarget(t, l)
	sv := l.SVM(l.VCenter().Inventory().Hosts[0].OldSVM)
	cases := []struct {
		name   string
		opts   map[string]any
		want   string // in the message
		defect string // a known defect, reported instead of asserted
	}{
		{"timezone with ;", map[string]any{"timezone": "UTC;reboot"}, "timezone", ""},
		{"timezone with space", map[string]any{"timezone": "UTC reboot"}, "timezone", ""},
		{"timezone with newline", map[string]any{"timezone": "UTC\nreboot"}, "timezone", ""},
		{"dns server with quote", map[string]any{"dns_servers": []any{`192.0.2.1"`}}, "dns_servers", ""},
		{"dns server with two", map[string]any{"dns_servers": []any{"192.0.2.1 192.0.2.2"}}, "dns_servers", ""},
		{"ksc address with ;", map[string]any{"ksc": map[string]any{"address": "ksc.lab.local;reboot"}}, `ksc: klconfig: administration server address "ksc.lab.local;reboot" is neither an IP address nor a host name`, ""},
		{"ksc address with $()", map[string]any{"ksc": map[string]any{"address": "$(reboot)"}}, "administration server address", ""},
		{"command with ;", map[string]any{"commands": []any{"version; reboot"}}, "commands[0]", ""},
		{"command with newline", map[string]any{"commands": []any{"version\nreboot"}}, "commands[0]", ""},
		{"command with quote", map[string]any{"commands": []any{`dnslookup "a b"`}}, "commands[0]", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.defect != "" {
				t.Skip("known defect: " + tc.defect)
			}
			before := sv.State().ResultsLog
			defer func() { assert.Equal(t, before, sv.State().ResultsLog, "no command reached the SVM") }()
			for _, check := range []bool{true, false} {
				res := runModule(t, ctx, l, "svm_klconfig", klconfigArgs(v, ip, tc.opts), ansibletest.Mode{Check: check})
				require.True(t, res.Failed(), "check=%v", check)
				assert.Contains(t, res.Msg(), tc.want, "check=%v", check)
				assert.NotContains(t, res, "commands", "nothing was run")
			}
		})
	}
	assert.Equal(t, "UTC", sv.State().Timezone)
}

// TLS verification is on by default: with no CA file, or a pinned
// fingerprint or thumbprint that does not match, the connection is
// refused. (agent_facts' own tests cover its untrusted KSC certificate
// and wrong thumbprint; svm_klconfig's its host key refusals.)
func TestDefaultTLSVerification(t *testing.T) {
	ctx := faultCtx(t)
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: -1})
	v := l.Vars(l.Dir())
	host := v.ESXiHosts[0]
	const badFP = "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99"
	purge := labtest.Args(kscArgs(v), map[string]any{"names": []any{"svm-esxi-09-6.1"}})
	cases := []struct {
		module string
		args   map[string]any
		want   string
	}{
		{"ksc_purge", labtest.Args(purge, map[string]any{"ksc_ca_file": nil}), "certificate"},
		{"ksc_purge", labtest.Args(purge, map[string]any{"ksc_ca_file": nil, "ksc_fingerprint": badFP}), "fingerprint"},
		{"ksc_task", labtest.Args(kscArgs(v), map[string]any{"ksc_ca_file": nil, "name": v.UpdateAgentsTask}), "certificate"},
		{"svm_deploy", deployArgs(v, host, map[string]any{"ca_file": nil}), "certificate"},
		{"svm_remove", labtest.Args(removeArgs(v, host), map[string]any{"ca_file": nil}), "certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.module, func(t *testing.T) {
			res := runModule(t, ctx, l, tc.module, tc.args, ansibletest.Mode{})
			require.True(t, res.Failed())
			assert.Contains(t, strings.ToLower(res.Msg()), tc.want)
		})
	}
	assert.Empty(t, svmsNamed(l, v.SVMs[host]), "nothing was deployed")
}

// Any string as an argument of a klconfig command constructor: either
// refused, or the command line holds it as exactly one word with nothing
// a shell would interpret.
func FuzzKlconfigCommandArgs(f *testing.F) {
	for _, s := range []string{"UTC", "Europe/Berlin", "192.0.2.1", "ksc.lab.local", "a;b", "a b", "a\nb", `a"b`, "$(id)", "`id`", "../x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		ctors := map[string]func(string) (klconfig.Command, error){
			"timezone":  klconfig.Timezone,
			"dns":       func(s string) (klconfig.Command, error) { return klconfig.DNS(s) },
			"dnssearch": func(s string) (klconfig.Command, error) { return klconfig.DNSSearch(s) },
			"dnslookup": klconfig.DNSLookup,
			"nagent":    func(s string) (klconfig.Command, error) { return klconfig.Nagent(s, 13000, 0) },
			"setsshkey": klconfig.SetSSHKey,
			"raw":       func(s string) (klconfig.Command, error) { return klconfig.Raw("dnslookup", s) },
		}
		for name, ctor := range ctors {
			cmd, err := ctor(arg)
			if err != nil {
				continue
			}
			line, err := cmd.Line()
			if err != nil {
				continue // refused at the line: never sent
			}
			if strings.ContainsAny(line, "\n\r;|&$`\"'<>\\(){}*?!#~") {
				t.Fatalf("%s(%q) gives a line a shell would interpret: %q", name, arg, line)
			}
			for _, r := range line {
				if unicode.IsControl(r) {
					t.Fatalf("%s(%q) gives a control character: %q", name, arg, line)
				}
			}
			if name != "setsshkey" && !strings.Contains(" "+line+" ", " "+arg+" ") {
				t.Fatalf("%s(%q): the argument is not one word of %q", name, arg, line)
			}
		}
	})
}

// trustPlaybook runs each module that connects somewhere with its
// verification off, in check mode, and svm_deploy from an image URL that
// carries credentials.
const trustPlaybook = `- name: Verification off, and an image URL with credentials
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files: ["{{ lab_vars }}"]
  tasks:
    - name: svm_deploy without certificate verification, image from a URL with credentials
      svm_deploy:
        hostname: "{{ vcenter_hostname }}"
        port: "{{ vcenter_port }}"
        username: "{{ vcenter_username }}"
        password: "{{ vcenter_password }}"
        validate_certs: false
        datacenter: "{{ vcenter_datacenter }}"
        esxi_hostname: "{{ esxi_hosts[0] }}"
        datastore: "{{ local_datastores[esxi_hosts[0]] }}"
        name: svm-url-test
        image: "{{ image_url }}"
      check_mode: true
    - name: A URL that does not parse, its password is never quoted
      svm_deploy:
        hostname: "{{ vcenter_hostname }}"
        port: "{{ vcenter_port }}"
        username: "{{ vcenter_username }}"
        password: "{{ vcenter_password }}"
        ca_file: "{{ vcenter_ca_file }}"
        datacenter: "{{ vcenter_datacenter }}"
        esxi_hostname: "{{ esxi_hosts[0] }}"
        datastore: "{{ local_datastores[esxi_hosts[0]] }}"
        name: svm-url-test
        image: "{{ bad_image_url }}"
      check_mode: true
      ignore_errors: true
    - name: ksc_task without certificate verification
      ksc_task:
        ksc_url: "{{ ksc_url }}"
        ksc_username: "{{ ksc_username }}"
        ksc_password: "{{ ksc_password }}"
        ksc_validate_certs: false
        name: "{{ ksc_update_agents_task }}"
      check_mode: true
    - name: svm_klconfig without host key checking
      svm_klconfig:
        host: "{{ svm_host }}"
        port: "{{ svm_ssh_port }}"
        password: "{{ svm_klconfig_password }}"
        host_key_checking: "off"
        record_path: "{{ record_path }}"
        gather: true
      check_mode: true
`

// Credentials in an image URL (parsable or not) never show at -vvvv, and
// each verification turned off gives one warning naming its option.
func TestImageURLSecretAndTrustWarnings(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx := faultCtx(t)
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: -1})
	v, ip := klconfigTarget(t, l)
	const urlPw, badPw = "Url-Secret-7q2", `Pct%zz"Q\-Secret-3`
	url := strings.Replace(labtest.ServeImage(t, v.NewImage.Path, nil), "http://", "http://deployer:"+urlPw+"@", 1)
	work := t.TempDir()
	book := filepath.Join(work, "trust.yml")
	require.NoError(t, os.WriteFile(book, []byte(trustPlaybook), 0o644))
	// In a file: ansible-playbook prints command-line extra vars at -vvvv.
	urls := filepath.Join(work, "urls.json")
	raw, err := json.Marshal(map[string]any{"image_url": url, "bad_image_url": "https://u:" + badPw + "@127.0.0.1:9/x.ova"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(urls, raw, 0o600))
	run, err := playtest.Playbook(ctx, playtest.Options{Playbook: book, Verbosity: 4, Args: []string{"-e", "@" + urls}, ExtraVars: map[string]any{
		"lab_vars": filepath.Join(l.Dir(), "vars.yml"), "svm_host": ip, "record_path": filepath.Join(work, "records"),
	}})
	require.NoError(t, err)
	require.Zero(t, run.ExitCode, tail(run.Output))
	results, err := json.Marshal(run.Tasks)
	require.NoError(t, err)
	for _, s := range append(labSecrets(l), urlPw, badPw, `Pct%zz\"Q\\-Secret-3`) {
		assert.NotContains(t, run.Output, s)
		assert.NotContains(t, string(results), s)
	}
	deploy := run.Task("svm_deploy without certificate verification, image from a URL with credentials")
	require.Len(t, deploy, 1)
	if inv, ok := deploy[0].Result["invocation"].(map[string]any); ok {
		assert.Contains(t, inv["module_args"].(map[string]any)["image"], "********", "masked in the invocation")
	}
	failed := run.Task("A URL that does not parse, its password is never quoted")
	require.Len(t, failed, 1)
	assert.Contains(t, failed[0].Msg(), "cannot be parsed")

	for task, option := range map[string]string{
		"svm_deploy without certificate verification, image from a URL with credentials": "validate_certs=false: ",
		"ksc_task without certificate verification":                                      "ksc_validate_certs=false: ",
		"svm_klconfig without host key checking":                                         "host_key_checking=off: ",
	} {
		res := run.Task(task)
		require.Len(t, res, 1, task)
		warnings, _ := res[0].Result["warnings"].([]any)
		n := 0
		for _, w := range warnings {
			if s, _ := w.(string); strings.HasPrefix(s, option) {
				n++
			}
		}
		assert.Equal(t, 1, n, "%s: one warning naming the option, got %v", task, warnings)
		assert.Equal(t, 1, strings.Count(run.Output, "[WARNING]: "+option), "%s: shown once", task)
	}
}

// A module killed mid-run (SIGKILL: the controller lost, the job
// cancelled hard) leaves its remote tmp dir behind, but no password in it:
// the module deleted its args file as soon as it had read it. With
// ANSIBLE_KEEP_REMOTE_FILES=1 the file is kept, and the scan finds the
// password there, which shows the scan can fail.
func TestKilledRunLeavesNoArgsFile(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	l := labtest.Start(t, sim.Config{Hosts: 1, VMsPerHost: -1, ImageBytes: 4 << 20})
	v := l.Vars(l.Dir())
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep_remote_files=%v", keep), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var served atomic.Int64
			// The image server stalls once the disk streams, then the whole
			// ansible-playbook process group is killed.
			url := labtest.ServeImage(t, v.NewImage.Path, func(r *http.Request, n int) {
				if served.Add(int64(n)) > 1<<20 {
					cancel()
					<-r.Context().Done()
				}
			})
			remoteTmp := t.TempDir()
			env := []string{"ANSIBLE_REMOTE_TMP=" + remoteTmp}
			if keep {
				env = append(env, "ANSIBLE_KEEP_REMOTE_FILES=1")
			}
			run, err := playtest.Playbook(ctx, playtest.Options{Playbook: "tests/playbooks/svm_deploy.yml", Env: env,
				ExtraVars: map[string]any{"lab_vars": filepath.Join(l.Dir(), "vars.yml"), "svm_new_image": map[string]any{"path": url}}})
			require.NoError(t, err)
			assert.Equal(t, -1, run.ExitCode, "killed mid-run:\n%s", tail(run.Output))
			dirs, err := filepath.Glob(filepath.Join(remoteTmp, "ansible-tmp-*"))
			require.NoError(t, err)
			require.NotEmpty(t, dirs, "the killed run left its tmp dir")
			var leaks []string
			for p, c := range filesUnder(t, remoteTmp) {
				for _, s := range labSecrets(l) {
					if strings.Contains(c, s) {
						leaks = append(leaks, filepath.Base(p))
					}
				}
			}
			if keep {
				assert.Contains(t, leaks, "args", "kept on request, and the scan finds it")
			} else {
				assert.Empty(t, leaks, "no password left on disk")
			}
		})
	}
}
