// Package sim composes the whole lab in one process: the vCenter (govmomi
// simulator), one klconfig SSH server per powered-on SVM, and the KSC
// OpenAPI server, wired like the real thing (docs/lab.md).
//
// Lab assumptions, where the vendor documentation is silent (NOT FOUND):
//   - Product keys of the Protection Server and the Light Agents in KSC are
//     configuration (Config.PSKey, Config.AgentProducts).
//   - Which agent versions a Protection Server serves is Config.Compatibility,
//     by default each product's old version with OldVersion and its new
//     version with NewVersion (the vendor's table for 6.2 was not found).
//   - KSC shows an SVM without a key with the "licence expired" status
//     condition (kscsim.StatusMaskLicence).
//   - Seeded SVMs accept the operator's klconfig password
//     (Config.SVMPassword) and their host keys are in the lab's
//     known_hosts, as an admin's would be. A new SVM deployed from the
//     image has the image's password (Config.ImagePassword) and a host key
//     generated at its first boot that no known_hosts holds, as in the
//     field; Config.OnePassword and Config.KnownNewHostKeys are the
//     simplifications, for tests about something else.
//   - Network Agent on an SVM reaches KSC only when `nagent` names the KSC
//     address (its IP or KSCHostName) and SSL port 13000.
package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ksvla/lightagent/internal/sim/images"
	"github.com/ksvla/lightagent/internal/sim/kscsim"
	"github.com/ksvla/lightagent/internal/sim/svm"
	"github.com/ksvla/lightagent/internal/sim/vcenter"
)

// KSC behaviours the lab can play.
const (
	KSC15  = "15"   // HostGroup.RemoveHosts honours bForceDestroy
	KSC151 = "15.1" // 15.1+/16: bForceDestroy ignored
)

// Documented defaults (product keys are NOT FOUND in the vendor docs).
const (
	DefaultPSKey         = "KSVLA-PS"
	DefaultPSDisplayName = images.DefaultProduct
	// NagentDisplayName is how KSC names the Network Agent every host runs.
	NagentDisplayName = "Kaspersky Security Center Network Agent"
	nagentVersion     = "14.2.0.26967"
	// UpdateAgentsTask is the KSC task that updates Light Agents.
	UpdateAgentsTask = "Update Light Agent"
	// KSCHostName is the DNS name every SVM resolves to the KSC address.
	KSCHostName = "ksc.lab.local"
	// NagentSSLPort and NagentPort are where KSC listens for Network Agents.
	NagentSSLPort = 13000
	NagentPort    = 14000
	// KSCUsername is the lab KSC's administrator account.
	KSCUsername = "ksc-admin"
	// DefaultAgentUpdateSpread is Config.AgentUpdateSpread's default.
	DefaultAgentUpdateSpread = 0.3
)

// Config configures a lab. Zero values take the documented defaults.
type Config struct {
	Hosts      int    // ESXi hosts; default 4
	VMsPerHost int    // protected VMs per host; default 3, negative for none
	OldVersion string // Protection Server of the seeded SVMs; default "6.1.0.100"
	NewVersion string // Protection Server of the new image; default "6.2.0.200"
	// AgentProducts are the Light Agent products the protected VMs run,
	// given out in turn; default DefaultAgentProducts (Windows and Linux).
	AgentProducts []AgentProduct
	// OldAgentVersion and NewAgentVersion, when set, replace every
	// product's old and new version (ksvla-lab -old-agent/-new-agent).
	OldAgentVersion, NewAgentVersion string
	// Compatibility is the vendor's table as the lab plays it: Protection
	// Server version -> agent product key -> agent versions it serves. A
	// version stands for every version starting with its parts. Default:
	// each product's OldVersion with OldVersion, NewVersion with NewVersion.
	Compatibility map[string]map[string][]string
	Unmarked      bool // seed old SVMs without marks, as the vendor's wizard does
	// SecondDatacenter seeds vcenter.SecondDatacenter: one more site
	// served by the same KSC, with a running, registered old SVM that the
	// upgrade must leave alone (KSC record included).
	SecondDatacenter bool
	KSC              string // KSC15 or KSC151 (default)
	VCenterListen    string // default "127.0.0.1:0"
	// Dir receives vars.yml, known_hosts, ksc.pem, vcenter.pem and the two
	// OVAs; default: a temporary directory removed by Close.
	Dir        string
	ImageBytes int64 // disk payload of each OVA; default 1 MiB
	// AgentUpdateDuration is the median time the Light Agent update takes
	// on one host, from the moment the update task reaches it to its last
	// agent; default 2s. Hosts update side by side, each agent of a host
	// finishing at its share of the host's time (AgentUpdateTime).
	AgentUpdateDuration time.Duration
	// AgentUpdateSpread is the sigma of the log-normal factor each host's
	// update time is drawn with: 0 takes the default 0.3 (hosts within
	// about 0.5x-2x of the median), 1 gives a long tail (one host in
	// twenty about 5x slower, as remote installations behind a slow WAN
	// link are), negative the same time on every host.
	AgentUpdateSpread float64
	// AgentUpdateSeed seeds the draw; default 1. A host's time depends
	// only on the seed and its name, so a lab replays.
	AgentUpdateSeed int64
	// AgentUpdateHosts overrides the drawn time of the named hosts.
	AgentUpdateHosts map[string]time.Duration
	// AgentUpdateHold is for tests: while it returns true for a host, the
	// updates of that host's agents stay due, however long the test needs
	// (an order of events a fixed time cannot promise on a loaded
	// machine). Called with the lab locked: it must not call the lab.
	AgentUpdateHold     func(host string) bool
	NetworkRestartDelay time.Duration // SVM `manageservices restart network`; default 2s
	RebootDelay         time.Duration // SVM `reboot`; default 5s
	// HeartbeatInterval is how often powered-on hosts are stamped visible
	// in KSC; default 1s.
	HeartbeatInterval    time.Duration
	PSKey, PSDisplayName string // Protection Server product in KSC (and the OVA's product)
	// SVMPassword is the operator's klconfig password, the one the seeded
	// SVMs have; default random.
	SVMPassword string
	// ImagePassword is the klconfig (and root) password of the SVM image:
	// what a new SVM accepts until it is changed; default random.
	ImagePassword string
	// OnePassword is a simplification: new SVMs accept SVMPassword instead
	// of the image's password.
	OnePassword bool
	// KnownNewHostKeys is a simplification: the lab writes new SVMs' host
	// keys into its known_hosts, as if an admin had added them.
	KnownNewHostKeys bool
	// VCenterPassword, KSCPassword: default random.
	VCenterPassword, KSCPassword string
	// SSHPort is the SVMs' klconfig SSH port: 0 = 22 (falling back to an
	// ephemeral port when 22 cannot be bound), svm.EphemeralPort for tests.
	SSHPort int
	// LoopbackNet is the second octet of the SVMs' 127.N.x.y addresses;
	// default 10. Labs running side by side (parallel test packages) use
	// different ones so their SVMs can all listen on port 22.
	LoopbackNet int
	Clock       kscsim.Clock // KSC's clock; nil = real time
	// DRSInterval is how often the cluster's fully automated DRS moves
	// VMs; default DefaultDRSInterval, negative for no DRS passes.
	DRSInterval time.Duration
	// ProtectedVMsStay is a simplification: the seeded protected VMs carry
	// DRS VM overrides that disable DRS for them, so they never move and
	// each host keeps its agents. By default they move as at a site: DRS
	// migrates them like any VM, and their agents look for an SVM from the
	// new host (AgentSelection).
	ProtectedVMsStay bool
	// AgentSelection is how a Light Agent picks its SVM: SelectStandard
	// (default, the vendor's default), SelectHypervisor or SelectCluster
	// (the extended algorithm with that scope).
	AgentSelection string
	// DRSIgnoresOverrides is for tests only: DRS moves VMs whatever their
	// DRS VM override says, as if no SVM had been pinned.
	DRSIgnoresOverrides bool
	// NoHA: the cluster runs without vSphere HA (hosts use autostart).
	NoHA bool
	// NoMaintenanceAutostart: leaving maintenance mode powers nothing on,
	// even outside HA (VMware KB 326330 says autostart does not fire
	// then); by default the host's autostart entries are honoured.
	NoMaintenanceAutostart bool
	// UnpinnedSeed seeds old SVMs without the DRS and HA VM overrides
	// the vendor's wizard gives them.
	UnpinnedSeed bool
	// Capacity is every host's memory, processors and local datastore.
	Capacity vcenter.Capacity
	// SmallHost names a host with memory only for what it runs plus
	// 2 GiB: too little for a second SVM.
	SmallHost string
	// KSCHook is called with each KSC method name before it is served
	// (kscsim.Config.Hook): tests drive races with it, deterministically.
	KSCHook func(method string)
	// KSCFailTasksOn makes every KSC task fail on the devices it names (by
	// display name, e.g. a protected VM or an SVM), with the text as KSC's
	// description of the failure (kscsim.Config.FailTasksOn).
	KSCFailTasksOn map[string]string
	Logf           func(format string, args ...any)
}

func randomSecret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return prefix + hex.EncodeToString(b)
}

func (c *Config) defaults() {
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setStr := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setInt(&c.Hosts, 4)
	setInt(&c.LoopbackNet, 10)
	setInt(&c.VMsPerHost, 3)
	setStr(&c.OldVersion, "6.1.0.100")
	setStr(&c.NewVersion, "6.2.0.200")
	if len(c.AgentProducts) == 0 {
		c.AgentProducts = DefaultAgentProducts
	}
	c.AgentProducts = append([]AgentProduct(nil), c.AgentProducts...) // ours to fill in
	for i := range c.AgentProducts {
		p := &c.AgentProducts[i]
		if c.OldAgentVersion != "" {
			p.OldVersion = c.OldAgentVersion
		}
		if c.NewAgentVersion != "" {
			p.NewVersion = c.NewAgentVersion
		}
	}
	if c.Compatibility == nil {
		c.Compatibility = map[string]map[string][]string{c.OldVersion: {}, c.NewVersion: {}}
		for _, p := range c.AgentProducts {
			c.Compatibility[c.OldVersion][p.Key] = append(c.Compatibility[c.OldVersion][p.Key], p.OldVersion)
			c.Compatibility[c.NewVersion][p.Key] = append(c.Compatibility[c.NewVersion][p.Key], p.NewVersion)
		}
	}
	setStr(&c.KSC, KSC151)
	setStr(&c.VCenterListen, "127.0.0.1:0")
	setStr(&c.PSKey, DefaultPSKey)
	setStr(&c.PSDisplayName, DefaultPSDisplayName)
	setStr(&c.SVMPassword, randomSecret("Svm-"))
	setStr(&c.ImagePassword, randomSecret("Img-"))
	if c.OnePassword {
		c.ImagePassword = c.SVMPassword
	}
	setStr(&c.VCenterPassword, randomSecret("Vc-"))
	setStr(&c.KSCPassword, randomSecret("Ksc-"))
	setDur(&c.AgentUpdateDuration, 2*time.Second)
	if c.AgentUpdateSpread == 0 {
		c.AgentUpdateSpread = DefaultAgentUpdateSpread
	}
	if c.AgentUpdateSeed == 0 {
		c.AgentUpdateSeed = 1
	}
	setDur(&c.NetworkRestartDelay, 2*time.Second)
	setDur(&c.RebootDelay, 5*time.Second)
	setDur(&c.HeartbeatInterval, time.Second)
	setDur(&c.DRSInterval, DefaultDRSInterval)
	setStr(&c.AgentSelection, SelectStandard)
	if c.ImageBytes == 0 {
		c.ImageBytes = 1 << 20
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// AgentProduct is a Light Agent product: Kaspersky Endpoint Security for
// Windows or for Linux in Light Agent mode, with the versions the lab
// moves its agents between.
type AgentProduct struct {
	Key, DisplayName, OS   string // KSC product key and name, guest OS as KSC shows it
	OldVersion, NewVersion string
}

func (p AgentProduct) kscProduct(version string) kscsim.Product {
	return kscsim.Product{Key: p.Key, Version: version, DisplayName: p.DisplayName, ProdVersion: version}
}

// DefaultAgentProducts are the lab's agents: 12.x versions of their own,
// never on the Protection Server's 6.x line. KSC's product table names KES
// for Windows "KES"; KESL hosts show "kesl".
var DefaultAgentProducts = []AgentProduct{
	{Key: "KES", DisplayName: "Kaspersky Endpoint Security for Windows", OS: "Microsoft Windows Server 2019",
		OldVersion: "12.5.0.100", NewVersion: "12.6.0.200"},
	{Key: "kesl", DisplayName: "Kaspersky Endpoint Security for Linux", OS: "Ubuntu 22.04 LTS",
		OldVersion: "12.1.0.300", NewVersion: "12.2.0.400"},
}

// Lab is a running lab.
type Lab struct {
	cfg        Config
	dir        string
	tempDir    bool
	vc         *vcenter.VCenter
	ksc        *kscsim.Server
	kscIP      string
	updateTask string            // KSC task id of UpdateAgentsTask
	taskIDs    map[string]string // KSC task ids of the preparing tasks
	oldImage   images.Info
	newImage   images.Info
	queue      *queue
	stop       chan struct{}
	wg         sync.WaitGroup
	closed     sync.Once

	// cmdMu guards commands apart from mu: SVMs report commands from
	// inside lab logic that holds mu (the seeded SVMs' nagent).
	cmdMu sync.Mutex
	// commands counts, per SVM name, the klconfig commands it received by
	// command name, so tests can assert that a rerun sent no nagent or
	// passwd.
	commands map[string]map[string]int

	mu      sync.Mutex         // guards everything below; lab logic runs under it
	svms    map[string]*svmRec // by VM name
	licence []LicenceEvent
	history []Event
	// keySeed makes this lab's SVM host keys its own: stable while the lab
	// runs (power cycles, address changes), new in the next lab, as a
	// redeployed VM gets a new key. Otherwise a client's records keyed by
	// host key would mistake an SVM of a new lab for one it configured.
	keySeed string
	agents  map[string]*agentRec // by VM name
	seeded  map[string]bool      // old SVMs the lab seeded (known even unmarked)
	// commands counts, per SVM name, the klconfig commands it received by
	// command name, so tests can assert that a rerun sent no nagent or
	// passwd.
	refused map[string]bool // SVM names whose SSH port refuses connections (RefuseSSH)
	nextIP  int
	ips     map[string]string // VM name -> loopback IP, stable across power cycles
	gaps    []Gap
	moves   []Move
	// agentMoves are the protected VMs DRS or HA moved.
	agentMoves []Move
	// hostCluster names each host's cluster (a standalone host: its
	// datacenter), for the cluster scope of AgentSelection.
	hostCluster map[string]string
	// clusterMu serialises the cluster services (DRS, HA, maintenance).
	clusterMu sync.Mutex
	ready     bool     // Start is done: connections are evaluated
	khDirs    []string // directories whose known_hosts is rewritten on change
	svmGrp    int
	vmGrp     int
	started   time.Time
}

// Start starts a lab: images, KSC, vCenter with its seeded VMs (their SVMs
// serving klconfig and registered in KSC), and writes the lab files.
func Start(ctx context.Context, cfg Config) (_ *Lab, err error) {
	cfg.defaults()
	switch cfg.AgentSelection {
	case SelectStandard, SelectHypervisor, SelectCluster:
	default:
		return nil, fmt.Errorf("start lab: agent selection %q: want %s, %s or %s", cfg.AgentSelection, SelectStandard, SelectHypervisor, SelectCluster)
	}
	l := &Lab{cfg: cfg, dir: cfg.Dir, queue: newQueue(), stop: make(chan struct{}), taskIDs: map[string]string{},
		svms: map[string]*svmRec{}, agents: map[string]*agentRec{}, seeded: map[string]bool{},
		ips: map[string]string{}, started: time.Now(), keySeed: randomSecret("hostkey-"),
		commands: map[string]map[string]int{}, refused: map[string]bool{}}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.dir == "" {
		if l.dir, err = os.MkdirTemp("", "ksvla-lab-"); err != nil {
			return nil, fmt.Errorf("start lab: %w", err)
		}
		l.tempDir = true
	} else if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return nil, fmt.Errorf("start lab: %w", err)
	}
	if l.dir, err = filepath.Abs(l.dir); err != nil {
		return nil, fmt.Errorf("start lab: %w", err)
	}
	if err := l.writeImages(); err != nil {
		return nil, err
	}
	if l.ksc, err = kscsim.Start(kscsim.Config{
		Username: KSCUsername, Password: cfg.KSCPassword, RemoveHostsForceIgnored: cfg.KSC != KSC15,
		CertDir: l.dir, Clock: cfg.Clock, Hook: cfg.KSCHook, FailTasksOn: cfg.KSCFailTasksOn,
	}); err != nil {
		return nil, fmt.Errorf("start lab ksc: %w", err)
	}
	u, err := url.Parse(l.ksc.URL())
	if err != nil {
		return nil, fmt.Errorf("start lab ksc: %w", err)
	}
	l.kscIP = u.Hostname()
	l.svmGrp = l.ksc.AddGroup("SVMs", 0)
	l.vmGrp = l.ksc.AddGroup("Virtual machines", 0)
	l.updateTask = l.ksc.AddTargetTask(UpdateAgentsTask, func(ctx context.Context, r *kscsim.Run) error { return l.runAgentUpdate(ctx, r) })
	l.addPrepareTasks()

	// Hooks only queue events: the seeded VMs' power-ons arrive while
	// vcenter.Start is still running, before l.vc is set.
	l.vc, err = vcenter.Start(ctx, vcenter.Config{
		Listen: cfg.VCenterListen, Password: cfg.VCenterPassword,
		Hosts: cfg.Hosts, VMsPerHost: cfg.VMsPerHost, OldVersion: cfg.OldVersion,
		OldImageSHA256: l.oldImage.SHA256, Unmarked: cfg.Unmarked, Product: cfg.PSDisplayName,
		Logf: cfg.Logf, NoHA: cfg.NoHA, UnpinnedSeed: cfg.UnpinnedSeed, Capacity: cfg.Capacity,
		HostCapacity: l.hostCapacity(), SecondDatacenter: cfg.SecondDatacenter, ProtectedVMsStay: cfg.ProtectedVMsStay,
		Hooks: vcenter.Hooks{
			OnPowerOn:  func(vm vcenter.VM) { l.queue.put(func() { l.vmPoweredOn(vm) }) },
			OnPowerOff: func(vm vcenter.VM) { l.queue.put(func() { l.vmPoweredOff(vm) }) },
			OnDestroy:  func(vm vcenter.VM) { l.queue.put(func() { l.vmDestroyed(vm) }) },
			OnMove:     func(vm vcenter.VM) { l.queue.put(func() { l.vmMoved(vm) }) },
		},
	})
	if err != nil {
		return nil, fmt.Errorf("start lab vcenter: %w", err)
	}
	l.seedKSC()

	l.wg.Add(1)
	go l.process()
	l.every(l.cfg.HeartbeatInterval, l.heartbeat)
	// Twice: handling the seeded power-ons queues their Network Agent
	// registrations behind the first barrier.
	for range 2 {
		if err := l.Sync(ctx); err != nil {
			return nil, fmt.Errorf("start lab: %w", err)
		}
	}
	l.mu.Lock()
	l.ready = true
	l.evaluateLocked("lab started")
	l.mu.Unlock()
	if err := l.WriteFiles(l.dir); err != nil {
		return nil, err
	}
	if cfg.DRSInterval > 0 {
		l.every(cfg.DRSInterval, l.drs)
	}
	return l, nil
}

// hostCapacity gives SmallHost the memory of its seeded VMs (old SVM and
// protected VMs) plus 2 GiB.
func (l *Lab) hostCapacity() map[string]vcenter.Capacity {
	if l.cfg.SmallHost == "" {
		return nil
	}
	mem := int64(max(0, l.cfg.VMsPerHost)*vcenter.ProtectedVMMemoryMB + vcenter.SVMMemoryMB + 2048)
	return map[string]vcenter.Capacity{l.cfg.SmallHost: {MemoryMB: mem}}
}

func (l *Lab) writeImages() error {
	var err error
	for _, im := range []struct {
		info    *images.Info
		version string
	}{{&l.oldImage, l.cfg.OldVersion}, {&l.newImage, l.cfg.NewVersion}} {
		spec := images.Spec{Version: im.version, Product: l.cfg.PSDisplayName, DiskBytes: l.cfg.ImageBytes}
		path := filepath.Join(l.dir, "ksvla-svm-"+im.version+".ova")
		if *im.info, err = images.WriteOVA(path, spec); err != nil {
			return fmt.Errorf("start lab: %w", err)
		}
	}
	return nil
}

// seedKSC registers the protected VMs' Light Agents and remembers which
// SVMs the lab seeded (they register themselves when they start).
func (l *Lab) seedKSC() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hostCluster = map[string]string{}
	for _, o := range l.vc.Inventory().Others {
		for _, h := range o.Hosts {
			l.seeded[h.OldSVM] = true
			l.hostCluster[h.Name] = o.Name
		}
	}
	for _, h := range l.vc.Inventory().Hosts {
		l.seeded[h.OldSVM] = true
		l.hostCluster[h.Name] = l.vc.Inventory().Cluster
		for i, name := range h.ProtectedVMs {
			// Products in turn, so every host runs Windows and Linux agents.
			prod := l.cfg.AgentProducts[i%len(l.cfg.AgentProducts)]
			a := &agentRec{name: name, host: h.Name, ip: h.ProtectedIPs[i], version: prod.OldVersion, product: prod}
			rec := l.kscHost(name, a.ip, l.vmGrp, prod.kscProduct(a.version))
			rec.OSName = prod.OS
			a.kscID = l.ksc.UpsertHost(rec)
			l.agents[name] = a
		}
	}
}

// Sync waits until every event queued so far has been handled.
func (l *Lab) Sync(ctx context.Context) error {
	done := make(chan struct{})
	l.queue.put(func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sync lab: %w", ctx.Err())
	}
}

// process runs queued events one at a time, under l.mu.
func (l *Lab) process() {
	defer l.wg.Done()
	for {
		f, ok := l.queue.get(l.stop)
		if !ok {
			return
		}
		l.mu.Lock()
		f()
		l.mu.Unlock()
	}
}

// heartbeat keeps powered-on, connected hosts visible in KSC, so that
// LastVisible moves only for them (powered-off SVMs go stale).
func (l *Lab) heartbeat() {
	l.mu.Lock()
	l.stampVisibleLocked()
	l.mu.Unlock()
}

// every runs job each interval on a goroutine of its own until the lab
// stops; Close waits for it.
func (l *Lab) every(interval time.Duration, job func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				job()
			}
		}
	}()
}

func (l *Lab) stampVisibleLocked() {
	for _, s := range l.svms {
		if s.on && s.kscID != "" {
			l.ksc.SetVisible(s.kscID, true)
		}
	}
	for _, a := range l.agents {
		if a.on {
			l.ksc.SetVisible(a.kscID, true)
		}
	}
}

// VCenter, KSC: the lab's parts, for tests and tools.
func (l *Lab) VCenter() *vcenter.VCenter { return l.vc }
func (l *Lab) KSC() *kscsim.Server       { return l.ksc }

// UpdateAgentsTaskID is the KSC task id of UpdateAgentsTask.
func (l *Lab) UpdateAgentsTaskID() string { return l.updateTask }

// SVM returns the simulated SVM behind a VM name, nil if the lab has not
// started one.
func (l *Lab) SVM(name string) *svm.SVM {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rec := l.svms[name]; rec != nil {
		return rec.sim
	}
	return nil
}

// Dir is where the lab files are.
func (l *Lab) Dir() string { return l.dir }

// Images returns the old and new OVAs the lab wrote.
func (l *Lab) Images() (old, new images.Info) { return l.oldImage, l.newImage }

// Config returns the lab's configuration with defaults filled in.
func (l *Lab) Config() Config { return l.cfg }

// Close stops everything and removes what the lab wrote in a temporary
// directory (files in a given Dir stay).
func (l *Lab) Close() {
	l.closed.Do(func() {
		close(l.stop)
		l.wg.Wait()
		if l.vc != nil {
			l.vc.Close() // first: no more VM events
		}
		l.mu.Lock()
		for _, s := range l.svms {
			if s.sim != nil {
				_ = s.sim.Stop() // Stop never fails; it only waits for sessions to end
			}
		}
		l.mu.Unlock()
		if l.ksc != nil {
			_ = l.ksc.Close() // nothing to report at shutdown
		}
		if l.tempDir {
			_ = os.RemoveAll(l.dir)
		}
	})
}

// loopbackIP gives each SVM its own 127.N.x.y address (127.N.0.2 first),
// allocated at its first power-on and kept across power cycles.
func (l *Lab) loopbackIP(name string) string {
	if ip, ok := l.ips[name]; ok {
		return ip
	}
	l.nextIP++
	n := l.nextIP
	ip := net.IPv4(127, byte(l.cfg.LoopbackNet), byte(n/254), byte(n%254+1)).String()
	l.ips[name] = ip
	return ip
}

// queue is an unbounded FIFO of events, so that hooks never block.
type queue struct {
	mu    sync.Mutex
	items []func()
	ready chan struct{}
}

func newQueue() *queue { return &queue{ready: make(chan struct{}, 1)} }

func (q *queue) put(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) get(stop <-chan struct{}) (func(), bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			f := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			return f, true
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-stop:
			return nil, false
		}
	}
}

// countCommand notes that SVM name received cmdline.
func (l *Lab) countCommand(name, cmdline string) {
	cmd, _, _ := strings.Cut(strings.TrimSpace(cmdline), " ")
	l.cmdMu.Lock()
	defer l.cmdMu.Unlock()
	if l.commands[name] == nil {
		l.commands[name] = map[string]int{}
	}
	l.commands[name][cmd]++
}

// CommandCounts returns how many times the SVM called name received each
// klconfig command (by command name, e.g. "nagent", "passwd"), over SSH
// or from its first startup script, since the lab started.
func (l *Lab) CommandCounts(name string) map[string]int {
	l.cmdMu.Lock()
	defer l.cmdMu.Unlock()
	out := map[string]int{}
	for k, v := range l.commands[name] {
		out[k] = v
	}
	return out
}

// RefuseSSH makes the SVM called name refuse SSH connections (refuse) or
// serve them again, as an SVM whose sshd is down or a firewall in the way.
// It applies to an SVM not deployed yet too, from its first power-on.
func (l *Lab) RefuseSSH(name string, refuse bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused[name] = refuse
	if rec := l.svms[name]; rec != nil && rec.sim != nil {
		rec.sim.RefuseSSH(refuse)
	}
}
