// Package svm simulates one KSVLA SVM (the Linux appliance carrying the Protection Server) as the
// lab sees it: a real SSH server on its own loopback address that runs the klconfig script API for
// the account `klconfig`, with per-SVM state, the first startup script, asynchronous network
// restarts and reboots.
//
// Vendor facts come from the KSVLA help's klconfig command pages
// (https://support.kaspersky.com/help/KSVLA/6.2/en-US/254869.htm). Where it is silent the lab's
// assumption is written next to the code that makes it.
package svm

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// EphemeralPort as Config.Port makes the SVM listen on a kernel-chosen port instead of 22.
// Tests use it so that parallel test binaries never fight over a port.
const EphemeralPort = -1

// Config describes one simulated SVM. Zero values get the defaults named on each field.
type Config struct {
	Name        string // VM name
	Version     string // Protection Server version, e.g. "6.2.0.200"
	ProductLine string // product line printed by `test`; default derived from Version
	APIVersion  string // default "1.0.0"
	IP          string // loopback IPv4 to listen on, e.g. "127.1.0.5"; also the DHCP lease of eth0
	// Port is 22 when zero. When binding :22 fails with permission denied the SVM falls back to an
	// ephemeral port on the same IP; Addr tells which port is served. EphemeralPort asks for that
	// directly.
	Port    int
	HostKey ssh.Signer // stable per SVM; default HostKeyFromSeed("svm/" + Name)
	// Password is the configuration password of `klconfig`; RootPassword the one of `root`.
	Password     string
	RootPassword string
	// NeedsNagentInstall models a 6.3 image that ships without Network Agent: `nagent` fails with
	// "ERROR: klnagent not installed." until `nagentinstall` ran with one package uploaded
	// (AddNagentPackage stands for the upload).
	NeedsNagentInstall bool
	// Interfaces the SVM has; default ["eth0"]. The first one is the management interface: the SVM
	// is reachable on its address.
	Interfaces []string
	// Hosts is the lab's DNS table for dnslookup (name -> IPv4), merged over DefaultHosts.
	Hosts map[string]string
	// ReverseNames answers getdnshostname and reverse dnslookup (IPv4 -> name with trailing dot).
	ReverseNames map[string]string

	NetworkRestartDelay time.Duration // async `manageservices ... network`; default 20s
	RebootDelay         time.Duration // `reboot` goes down after this; default 60s
	RebootDowntime      time.Duration // unreachable for this long while rebooting; default 2s
	Hooks               Hooks
}

// Hooks let the lab react to what happens inside the SVM. All are optional and are called with no
// SVM lock held, so they may call back into the SVM (State, Addr...), but not Stop from Command.
type Hooks struct {
	// Nagent reports that the Administration Server connection was set (port 0 = not given).
	Nagent func(s *SVM, address string, sslPort, port int)
	// AddressChanged reports that a network restart or reboot moved the SVM to a new IP.
	AddressChanged func(s *SVM, oldIP, newIP string)
	// Rebooted reports that the SVM is back after `reboot`.
	Rebooted func(s *SVM)
	// Command reports every command run (SSH or first boot), as the SVM received it.
	Command func(s *SVM, cmdline string, ok bool)
}

// DefaultHosts is the lab DNS table every SVM knows (the www.google.com entry is the vendor's
// dnslookup example).
var DefaultHosts = map[string]string{
	"localhost":      "127.0.0.1",
	"www.google.com": "173.194.122.144",
}

// SVM is one simulated SVM. Its methods are safe for concurrent use.
type SVM struct {
	cfg       Config
	serverCfg *ssh.ServerConfig

	// mu guards everything below. Commands run under it; stdin is read before taking it.
	mu        sync.Mutex
	ip        string // address of the management interface now
	port      int    // port chosen at the first listen, reused on every later listen
	ln        net.Listener
	conns     map[net.Conn]struct{}
	acceptWG  sync.WaitGroup
	poweredOn bool
	gen       int // bumped by Stop so that pending timers of an earlier power cycle do nothing
	bootedAt  time.Time

	rebooting   bool
	bootFailed  bool
	networkDown bool
	sshdStopped bool
	drop        *dropRule // test-facing fault: see DropConnection
	refused     bool      // test-facing fault: see RefuseSSH

	passwords       map[string]string
	passwordChanges map[string]int
	nameservers     []string
	search          []string
	timezone        string // configured
	tzEffective     string // applied at boot
	connectorLang   string
	nagent          Nagent
	packages        []string
	ifaces          map[string]Interface
	authorizedKeys  []ssh.PublicKey
	hosts           map[string]string
	reverse         map[string]string
	resultsLog      []string
	bootLog         []string
	bootDone        bool
	firstBootCmds   []string
}

// New validates cfg, fills defaults and returns a powered-off SVM.
func New(cfg Config) (*SVM, error) {
	if cfg.Name == "" {
		return nil, errors.New("new svm: name is required")
	}
	addr, err := netip.ParseAddr(cfg.IP)
	if err != nil || !addr.Is4() {
		return nil, fmt.Errorf("new svm %s: ip %q is not an IPv4 address", cfg.Name, cfg.IP)
	}
	if cfg.Version == "" {
		return nil, fmt.Errorf("new svm %s: version is required", cfg.Name)
	}
	if cfg.Password == "" {
		return nil, fmt.Errorf("new svm %s: password is required", cfg.Name)
	}
	if cfg.ProductLine == "" {
		cfg.ProductLine = DefaultProductLine(cfg.Version)
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = "1.0.0"
	}
	switch cfg.Port {
	case 0:
		cfg.Port = 22
	case EphemeralPort:
		cfg.Port = 0
	}
	if cfg.HostKey == nil {
		cfg.HostKey = HostKeyFromSeed("svm/" + cfg.Name)
	}
	if len(cfg.Interfaces) == 0 {
		cfg.Interfaces = []string{"eth0"}
	}
	if cfg.NetworkRestartDelay == 0 {
		cfg.NetworkRestartDelay = 20 * time.Second
	}
	if cfg.RebootDelay == 0 {
		cfg.RebootDelay = time.Minute
	}
	if cfg.RebootDowntime == 0 {
		cfg.RebootDowntime = 2 * time.Second
	}
	s := &SVM{
		cfg:             cfg,
		ip:              cfg.IP,
		port:            cfg.Port,
		conns:           map[net.Conn]struct{}{},
		passwords:       map[string]string{"klconfig": cfg.Password, "root": cfg.RootPassword},
		passwordChanges: map[string]int{},
		timezone:        "UTC",
		tzEffective:     "UTC",
		connectorLang:   "en",
		nagent:          Nagent{Installed: !cfg.NeedsNagentInstall},
		ifaces:          map[string]Interface{},
		hosts:           map[string]string{},
		reverse:         map[string]string{},
	}
	// A freshly deployed SVM gets its address by DHCP on the management interface.
	s.ifaces[cfg.Interfaces[0]] = Interface{Mode: "dhcp", Primary: true}
	for _, name := range cfg.Interfaces[1:] {
		s.ifaces[name] = Interface{Mode: "dhcp"}
	}
	for k, v := range DefaultHosts {
		s.hosts[strings.ToLower(k)] = v
	}
	for k, v := range cfg.Hosts {
		s.hosts[strings.ToLower(k)] = v
	}
	for k, v := range cfg.ReverseNames {
		s.reverse[k] = v
	}
	s.serverCfg = s.newServerConfig()
	return s, nil
}

// DefaultProductLine is what `test` prints for a version, e.g.
// "Kaspersky Security for Virtualization 6.2 Light Agent 6.2.0.200".
func DefaultProductLine(version string) string {
	parts := strings.SplitN(version, ".", 3)
	short := version
	if len(parts) >= 2 {
		short = parts[0] + "." + parts[1]
	}
	return fmt.Sprintf("Kaspersky Security for Virtualization %s Light Agent %s", short, version)
}

// HostKeyFromSeed derives an ed25519 host key deterministically from seed, so that a lab restart
// keeps every SVM's key (and the known_hosts the lab wrote stays valid).
func HostKeyFromSeed(seed string) ssh.Signer {
	sum := sha256.Sum256([]byte("ksvla-lab-hostkey/" + seed))
	signer, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(sum[:]))
	if err != nil {
		// NewSignerFromKey cannot fail for an ed25519.PrivateKey.
		panic(fmt.Sprintf("host key from seed: %v", err))
	}
	return signer
}

// Name returns the VM name.
func (s *SVM) Name() string { return s.cfg.Name }

// HostKey returns the SVM's public host key (for known_hosts files).
func (s *SVM) HostKey() ssh.PublicKey { return s.cfg.HostKey.PublicKey() }

// Start powers the SVM on: it listens and serves. An SVM whose first boot failed (passwd in the
// first startup script) is powered on but never answers, as the vendor warns.
func (s *SVM) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.poweredOn {
		return fmt.Errorf("start svm %s: already powered on", s.cfg.Name)
	}
	s.poweredOn = true
	s.bootLocked()
	if err := s.syncListenerLocked(); err != nil {
		s.poweredOn = false
		return fmt.Errorf("start svm %s: %w", s.cfg.Name, err)
	}
	return nil
}

// Stop powers the SVM off: the listener closes, live sessions drop and pending network restarts
// or reboots are cancelled.
func (s *SVM) Stop() error {
	s.mu.Lock()
	s.poweredOn = false
	s.rebooting = false
	s.gen++
	s.dropLocked()
	s.mu.Unlock()
	s.acceptWG.Wait()
	return nil
}

// Addr returns "ip:port" served now, or "" when the SVM does not answer.
func (s *SVM) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// IP returns the address of the management interface now (also while not serving).
func (s *SVM) IP() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ip
}

// AddNagentPackage stands for uploading a Network Agent DEB package to
// /var/opt/kaspersky/klconfig/klnagent_distro/.
func (s *SVM) AddNagentPackage(fileName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.packages = append(s.packages, fileName)
}

// SetHost adds name -> IPv4 to the SVM's view of DNS.
func (s *SVM) SetHost(name, ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hosts[strings.ToLower(name)] = ip
}

// SetReverseName makes reverse lookups of ip answer name (give the trailing dot).
func (s *SVM) SetReverseName(ip, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reverse[ip] = name
}

// bootLocked applies what takes effect at boot: configured address and time zone, services up.
func (s *SVM) bootLocked() {
	s.bootedAt = time.Now()
	s.networkDown, s.sshdStopped, s.rebooting = false, false, false
	s.tzEffective = s.timezone
	s.ip = s.configuredIPLocked()
}

// configuredIPLocked is the management interface address after the next network start.
func (s *SVM) configuredIPLocked() string {
	if in := s.ifaces[s.cfg.Interfaces[0]]; in.Mode == "static" {
		return in.IP
	}
	return s.cfg.IP // the lab's DHCP server always hands back the first lease
}

func (s *SVM) shouldServeLocked() bool {
	return s.poweredOn && !s.rebooting && !s.bootFailed && !s.networkDown && !s.sshdStopped && !s.refused
}

// syncListenerLocked opens or closes the listener to match the SVM's condition.
func (s *SVM) syncListenerLocked() error {
	if !s.shouldServeLocked() {
		s.closeListenerLocked()
		return nil
	}
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(s.ip, strconv.Itoa(s.port)))
	if err != nil && s.port != 0 && (errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EADDRINUSE)) {
		// Unprivileged lab, or the machine's own sshd holds *:22: serve an ephemeral port on the
		// same IP and publish it (known_hosts and vars carry the port).
		ln, err = net.Listen("tcp", net.JoinHostPort(s.ip, "0"))
	}
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.ip, err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.ln = ln
	s.acceptWG.Add(1)
	go s.serve(ln)
	return nil
}

func (s *SVM) closeListenerLocked() {
	if s.ln != nil {
		_ = s.ln.Close() // the accept loop ends on this; its error is of no interest
		s.ln = nil
	}
}

// dropLocked closes the listener and every live connection, as a power-off or an address change.
func (s *SVM) dropLocked() {
	s.closeListenerLocked()
	for c := range s.conns {
		_ = c.Close() // dropping is the point; a close error changes nothing
		delete(s.conns, c)
	}
}

// laterLocked runs f with s.mu held after d, unless the SVM was powered off in between; the
// functions f returns (hook calls) run after the lock is released.
func (s *SVM) laterLocked(d time.Duration, f func() []func()) {
	gen := s.gen
	time.AfterFunc(d, func() {
		s.mu.Lock()
		if gen != s.gen || !s.poweredOn {
			s.mu.Unlock()
			return
		}
		after := f()
		s.mu.Unlock()
		for _, h := range after {
			h()
		}
	})
}
