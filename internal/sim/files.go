package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh/knownhosts"
	"gopkg.in/yaml.v3"

	"github.com/ksvla/lightagent/internal/sim/images"
	"github.com/ksvla/lightagent/internal/sim/vcenter"
)

// Vars is the content of vars.yml: everything a playbook needs to reach
// the lab. Passwords are in it: the directory is the lab's secret store.
type Vars struct {
	VCenterHostname   string `yaml:"vcenter_hostname"`
	VCenterPort       int    `yaml:"vcenter_port"`
	VCenterUsername   string `yaml:"vcenter_username"`
	VCenterPassword   string `yaml:"vcenter_password"`
	VCenterValidate   bool   `yaml:"vcenter_validate_certs"`
	VCenterCAFile     string `yaml:"vcenter_ca_file"`
	VCenterThumbprint string `yaml:"vcenter_thumbprint"`
	Datacenter        string `yaml:"vcenter_datacenter"`
	Cluster           string `yaml:"vcenter_cluster"`
	// ServedDatacenters are every datacenter whose SVMs this KSC serves:
	// ksc_purge removes a record found by version only when its VM is in
	// none of them.
	ServedDatacenters   []string          `yaml:"ksc_served_datacenters"`
	ESXiHosts           []string          `yaml:"esxi_hosts"`
	SharedDatastore     string            `yaml:"shared_datastore"`
	LocalDatastores     map[string]string `yaml:"local_datastores"` // ESXi host -> datastore
	Networks            []string          `yaml:"networks"`
	SVMNetwork          string            `yaml:"svm_network"`
	KSCURL              string            `yaml:"ksc_url"`
	KSCUsername         string            `yaml:"ksc_username"`
	KSCPassword         string            `yaml:"ksc_password"`
	KSCCAFile           string            `yaml:"ksc_ca_file"`
	KSCFingerprint      string            `yaml:"ksc_fingerprint"`
	KSCNagentAddress    string            `yaml:"ksc_nagent_address"`
	KSCNagentSSLPort    int               `yaml:"ksc_nagent_ssl_port"`
	KSCNagentPort       int               `yaml:"ksc_nagent_port"`
	SVMKlconfigPassword string            `yaml:"svm_klconfig_password"`
	SVMImagePassword    string            `yaml:"svm_image_klconfig_password"` // what a new SVM accepts until first contact
	SVMKnownHosts       string            `yaml:"svm_known_hosts"`
	SVMSSHPort          int               `yaml:"svm_ssh_port"` // klconfig SSH port of every SVM
	OldVersion          string            `yaml:"svm_old_version"`
	NewVersion          string            `yaml:"svm_new_version"`
	PSProductKey        string            `yaml:"ps_product_key"`
	PSProductName       string            `yaml:"ps_product_name"`
	// LAProductKeys are the agents' KSC product keys (agent_facts'
	// la_products); AgentProducts describe them with their versions.
	LAProductKeys []string    `yaml:"la_product_keys"`
	AgentProducts []AgentVars `yaml:"agent_products"`
	// Compatibility is the table the playbooks pass as the modules'
	// compatibility option.
	Compatibility    map[string]map[string][]string `yaml:"ksvla_compatibility"`
	UpdateAgentsTask string                         `yaml:"ksc_update_agents_task"`
	ActivateTask     string                         `yaml:"ksc_activate_task"`
	UpdateDBTask     string                         `yaml:"ksc_update_databases_task"`
	OldImage         Image                          `yaml:"svm_old_image"`
	NewImage         Image                          `yaml:"svm_new_image"`
	SVMs             map[string]string              `yaml:"new_svm_names"` // ESXi host -> suggested new SVM name
}

// AgentVars is one Light Agent product of the lab.
type AgentVars struct {
	Key        string `yaml:"key"`
	Name       string `yaml:"name"`
	OS         string `yaml:"os"`
	OldVersion string `yaml:"old_version"`
	NewVersion string `yaml:"new_version"`
}

// AgentVersions returns the agents' old (new=false) or new versions.
func (v Vars) AgentVersions(new bool) []string {
	var out []string
	for _, p := range v.AgentProducts {
		ver := p.OldVersion
		if new {
			ver = p.NewVersion
		}
		if !slices.Contains(out, ver) {
			out = append(out, ver)
		}
	}
	return out
}

// Image is an OVA the lab wrote.
type Image struct {
	Path    string `yaml:"path"`
	SHA256  string `yaml:"sha256"`
	Version string `yaml:"version"`
}

func image(i images.Info) Image { return Image{Path: i.Path, SHA256: i.SHA256, Version: i.Version} }

// Vars returns vars.yml's content for files written in dir.
func (l *Lab) Vars(dir string) Vars {
	u := l.vc.URL()
	port, _ := strconv.Atoi(u.Port()) // the simulator's URL always carries a port
	inv := l.vc.Inventory()
	v := Vars{
		VCenterHostname: u.Hostname(), VCenterPort: port, VCenterUsername: l.vc.Username(), VCenterPassword: l.vc.Password(),
		VCenterValidate: true, VCenterCAFile: filepath.Join(dir, "vcenter.pem"), VCenterThumbprint: l.vc.Thumbprint(),
		Datacenter: inv.Datacenter, Cluster: inv.Cluster, SharedDatastore: inv.SharedDatastore,
		LocalDatastores: map[string]string{}, Networks: inv.Networks, SVMNetwork: vcenter.VMNetwork,
		KSCURL: l.ksc.URL(), KSCUsername: KSCUsername, KSCPassword: l.cfg.KSCPassword,
		KSCCAFile: filepath.Join(dir, "ksc.pem"), KSCFingerprint: l.ksc.Fingerprint(),
		KSCNagentAddress: l.kscIP, KSCNagentSSLPort: NagentSSLPort, KSCNagentPort: NagentPort,
		SVMKlconfigPassword: l.cfg.SVMPassword, SVMImagePassword: l.cfg.ImagePassword, SVMKnownHosts: filepath.Join(dir, "known_hosts"),
		OldVersion: l.cfg.OldVersion, NewVersion: l.cfg.NewVersion,
		PSProductKey: l.cfg.PSKey, PSProductName: l.cfg.PSDisplayName,
		Compatibility: l.cfg.Compatibility, UpdateAgentsTask: UpdateAgentsTask,
		ActivateTask: ActivateTask, UpdateDBTask: UpdateDatabasesTask,
		OldImage: image(l.oldImage), NewImage: image(l.newImage), SVMs: map[string]string{},
	}
	for _, p := range l.cfg.AgentProducts {
		if !slices.Contains(v.LAProductKeys, p.Key) {
			v.LAProductKeys = append(v.LAProductKeys, p.Key)
		}
		v.AgentProducts = append(v.AgentProducts, AgentVars{Key: p.Key, Name: p.DisplayName, OS: p.OS, OldVersion: p.OldVersion, NewVersion: p.NewVersion})
	}
	v.SVMSSHPort = l.cfg.SSHPort
	if v.SVMSSHPort <= 0 {
		// 0 means 22; an ephemeral port (tests) differs per SVM and is
		// only in known_hosts.
		v.SVMSSHPort = 22
	}
	v.ServedDatacenters = []string{inv.Datacenter}
	for _, o := range inv.Others {
		v.ServedDatacenters = append(v.ServedDatacenters, o.Name)
	}
	for _, h := range inv.Hosts {
		v.ESXiHosts = append(v.ESXiHosts, h.Name)
		v.LocalDatastores[h.Name] = h.LocalDatastore
		v.SVMs[h.Name] = vcenter.SVMName(h.Name, l.cfg.NewVersion)
	}
	return v
}

// WriteFiles writes vars.yml, known_hosts, ksc.pem and vcenter.pem into
// dir. known_hosts there is rewritten whenever an SVM starts, moves or
// goes (rather than guessing the addresses of SVMs not deployed yet), by
// rename, so readers never see half a file.
func (l *Lab) WriteFiles(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("write lab files: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write lab files: %w", err)
	}
	vars, err := yaml.Marshal(l.Vars(dir))
	if err != nil {
		return fmt.Errorf("write lab files: %w", err)
	}
	for name, data := range map[string][]byte{
		"vars.yml":    append([]byte("# written by ksvla-lab: connection details of the running lab\n"), vars...),
		"ksc.pem":     l.ksc.CertPEM(),
		"vcenter.pem": l.vc.CertPEM(),
	} {
		if err := WriteAtomic(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("write lab files: %w", err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Contains(l.khDirs, dir) {
		l.khDirs = append(l.khDirs, dir)
	}
	return l.writeKnownHostsLocked()
}

// writeKnownHostsLocked writes the host keys an admin's known_hosts would
// hold, at their SVMs' current addresses, into each known_hosts the lab
// maintains: the seeded SVMs' only (new SVMs' too with KnownNewHostKeys).
func (l *Lab) writeKnownHostsLocked() error {
	var lines []string
	for _, s := range l.svms {
		if s.sim == nil || (!l.seeded[s.name] && !l.cfg.KnownNewHostKeys) {
			continue
		}
		addr := s.sim.Addr()
		if addr == "" {
			addr = s.sim.IP() // not answering now: keep its last address known
		}
		lines = append(lines, knownhosts.Line([]string{knownhosts.Normalize(addr)}, s.sim.HostKey()))
	}
	sort.Strings(lines)
	data := []byte(strings.Join(lines, "\n") + "\n")
	for _, dir := range l.khDirs {
		if err := WriteAtomic(filepath.Join(dir, "known_hosts"), data, 0o644); err != nil {
			l.cfg.Logf("lab: write known_hosts: %v", err)
			return fmt.Errorf("write known_hosts in %s: %w", dir, err)
		}
	}
	return nil
}

// WriteAtomic writes data to path through a temporary file and a rename,
// so that a reader sees the old content or the new, never a part.
func WriteAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
