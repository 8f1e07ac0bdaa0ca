package svm

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	markerOK     = "KLCONFIG OK"
	markerFailed = "KLCONFIG FAILED"
	// maxStdinLine bounds what passwd reads; the vendor limit is 60 characters.
	maxStdinLine = 4096
)

// run collects one command's output and the hook calls to make once the lock is released.
type run struct {
	lines []string
	after []func()
	stdin string // first stdin line, read only for commands that want it
	noIn  bool   // stdin was absent or unreadable
}

func (r *run) print(format string, a ...any) { r.lines = append(r.lines, fmt.Sprintf(format, a...)) }

// fail prints "ERROR: <text>" and reports failure.
func (r *run) fail(format string, a ...any) bool {
	r.lines = append(r.lines, "ERROR: "+fmt.Sprintf(format, a...))
	return false
}

func (r *run) usage(text string) bool {
	r.lines = append(r.lines, "Usage: "+text)
	return false
}

type command func(s *SVM, r *run, args []string) bool

var commands map[string]command

func init() {
	// Assigned here, not in the declaration: reboot -> first boot -> execLocked refers back to
	// the table, an initialisation cycle for a package-level initialiser.
	commands = map[string]command{
		"apiversion":     noArgs("apiversion", func(s *SVM, r *run) { r.print("%s", s.cfg.APIVersion) }),
		"version":        noArgs("version", func(s *SVM, r *run) { r.print("%s", s.cfg.Version) }),
		"test":           noArgs("test", (*SVM).cmdTest),
		"connectorlang":  (*SVM).cmdConnectorLang,
		"network":        (*SVM).cmdNetwork,
		"dhcp":           (*SVM).cmdDHCP,
		"dns":            (*SVM).cmdDNS,
		"dnssearch":      (*SVM).cmdDNSSearch,
		"dnsshow":        (*SVM).cmdDNSShow,
		"dnslookup":      (*SVM).cmdDNSLookup,
		"getdnshostname": (*SVM).cmdGetDNSHostname,
		"timezone":       (*SVM).cmdTimezone,
		"nagent":         (*SVM).cmdNagent,
		"nagentinstall":  (*SVM).cmdNagentInstall,
		"manageservices": (*SVM).cmdManageServices,
		"passwd":         (*SVM).cmdPasswd,
		"reboot":         noArgs("reboot", (*SVM).cmdReboot),
		"rollbackpatch":  (*SVM).cmdRollbackPatch,
		"setsshkey":      (*SVM).cmdSetSSHKey,
	}
}

func noArgs(name string, f func(s *SVM, r *run)) command {
	return func(s *SVM, r *run, args []string) bool {
		if len(args) != 0 {
			return r.usage(name)
		}
		f(s, r)
		return true
	}
}

// Exec runs one klconfig command line exactly as the klconfig account's forced command would: the
// line is split on whitespace with no shell interpretation (quotes, `;`, `$()` are literal
// characters of an argument). It returns the output including the final marker line and whether
// the marker is KLCONFIG OK. Both SSH sessions and the first startup script come through here.
func (s *SVM) Exec(cmdline string, stdin io.Reader) (output string, ok bool) {
	args := strings.Fields(cmdline)
	r := &run{}
	if len(args) > 0 && args[0] == "passwd" {
		// Read before locking: a slow client must not stall the whole SVM.
		r.stdin, r.noIn = readLine(stdin)
	}

	s.mu.Lock()
	ok = s.execLocked(args, r)
	s.mu.Unlock()
	for _, h := range r.after {
		h()
	}
	if hook := s.cfg.Hooks.Command; hook != nil {
		hook(s, cmdline, ok)
	}
	return strings.Join(r.lines, "\n") + "\n", ok
}

// execLocked dispatches one split command line, appends the marker line to r.lines and the whole
// result to results.log.
func (s *SVM) execLocked(args []string, r *run) (ok bool) {
	switch {
	case len(args) == 0:
		ok = r.usage("<command> [arguments]")
	case commands[args[0]] == nil || (args[0] == "nagentinstall" && !s.hasNagentInstallLocked()):
		ok = r.fail("Unknown command %s.", args[0])
	default:
		ok = commands[args[0]](s, r, args[1:])
	}
	if ok {
		r.lines = append(r.lines, markerOK)
	} else {
		r.lines = append(r.lines, markerFailed)
	}
	// results.log keeps the command line (never a secret: passwords come on stdin) and its output.
	s.resultsLog = append(s.resultsLog, time.Now().UTC().Format(time.RFC3339)+" "+strings.Join(args, " "))
	s.resultsLog = append(s.resultsLog, r.lines...)
	return ok
}
func readLine(stdin io.Reader) (string, bool) {
	if stdin == nil {
		return "", true
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, maxStdinLine)).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", true
	}
	return strings.TrimRight(line, "\r\n"), false
}

func (s *SVM) cmdTest(r *run) {
	now := time.Now()
	if loc, err := loadZone(s.tzEffective); err == nil {
		now = now.In(loc)
	}
	r.print("uid=0(root) gid=0(root) groups=0(root)")
	r.print("%s", now.Format("Mon Jan _2 15:04:05 MST 2006"))
	r.print("%s", s.cfg.ProductLine)
	r.print("%s up %s,0 users,load average: 0.04, 0.18, 0.11", now.Format("15:04:05"), uptime(now.Sub(s.bootedAt)))
	// Byte for byte the vendor example, en dash included.
	r.print("DONE –-")
}

func uptime(d time.Duration) string {
	mins := int(d / time.Minute)
	switch {
	case mins < 60:
		return fmt.Sprintf("%d min", mins)
	case mins < 24*60:
		return fmt.Sprintf("%d:%02d", mins/60, mins%60)
	default:
		return fmt.Sprintf("%d days, %d:%02d", mins/(24*60), (mins/60)%24, mins%60)
	}
}

var languages = []string{"de", "en", "fr", "ja", "ru", "zh-Hans", "zh-Hant"}

func (s *SVM) cmdConnectorLang(r *run, args []string) bool {
	if len(args) != 1 {
		return r.usage("connectorlang lang")
	}
	if !slices.Contains(languages, args[0]) {
		return r.fail("Wrong language format.")
	}
	s.connectorLang = args[0]
	return true
}

// ifaceRE is the shape of a Linux interface name; the SVM also has to own the interface.
var ifaceRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,14}$`)

func (s *SVM) checkIface(r *run, name string) bool {
	if _, ok := s.ifaces[name]; !ok || !ifaceRE.MatchString(name) {
		return r.fail("Wrong interface format %s", name)
	}
	return true
}

func isIPv4(v string) bool {
	a, err := netip.ParseAddr(v)
	return err == nil && a.Is4()
}

func isNetmask(v string) bool {
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is4() {
		return false
	}
	b := a.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	return m != 0 && m|(m-1) == ^uint32(0) // ones then zeros
}

func (s *SVM) cmdNetwork(r *run, args []string) bool {
	if len(args) < 4 || len(args) > 5 {
		return r.usage("network interface ip netmask broadcast [gateway]")
	}
	if !s.checkIface(r, args[0]) {
		return false
	}
	for i, what := range []string{"", "IP address", "netmask", "broadcast address", "gateway"} {
		if i == 0 || i >= len(args) {
			continue
		}
		if (what == "netmask" && !isNetmask(args[i])) || !isIPv4(args[i]) {
			return r.fail("Wrong %s format %s.", what, args[i])
		}
	}
	in := Interface{Mode: "static", IP: args[1], Netmask: args[2], Broadcast: args[3], Primary: s.ifaces[args[0]].Primary}
	if len(args) == 5 {
		in.Gateway = args[4]
	}
	s.ifaces[args[0]] = in
	return true
}

func (s *SVM) cmdDHCP(r *run, args []string) bool {
	if len(args) < 1 || len(args) > 2 {
		return r.usage("dhcp interface [yes|no]")
	}
	if !s.checkIface(r, args[0]) {
		return false
	}
	primary := s.ifaces[args[0]].Primary
	if len(args) == 2 {
		switch args[1] {
		case "yes":
			primary = true
		case "no":
			primary = false
		default:
			return r.fail("'yes' or 'no' should be specified")
		}
	}
	if primary {
		// Only one interface is primary: the last one flagged wins.
		for name, in := range s.ifaces {
			in.Primary = false
			s.ifaces[name] = in
		}
	}
	s.ifaces[args[0]] = Interface{Mode: "dhcp", Primary: primary}
	return true
}

// maxNameservers: the vendor's maximum is NOT FOUND; the lab assumes the resolv.conf limit (glibc
// MAXNS = 3) and says so with an ERROR line. Clients must not rely on it.
const maxNameservers = 3

func (s *SVM) cmdDNS(r *run, args []string) bool {
	if len(args) > maxNameservers {
		return r.fail("Too many DNS servers: at most %d.", maxNameservers)
	}
	for _, a := range args {
		if _, err := netip.ParseAddr(a); err != nil {
			return r.fail("Wrong address format %s.", a)
		}
	}
	s.nameservers = slices.Clone(args)
	s.search = nil // vendor: `dns` clears the search list
	return true
}

var domainRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)

func (s *SVM) cmdDNSSearch(r *run, args []string) bool {
	if len(args) > 3 {
		return r.usage("dnssearch [domain1] [domain2] [domain3]")
	}
	for _, d := range args {
		if !domainRE.MatchString(d) {
			return r.fail("Wrong domain format %s.", d)
		}
	}
	s.search = slices.Clone(args)
	return true
}

func (s *SVM) cmdDNSShow(r *run, args []string) bool {
	if len(args) != 1 {
		return r.usage("dnsshow nameservers|search")
	}
	switch args[0] {
	case "nameservers":
		r.print("%s", strings.Join(s.nameservers, " "))
	case "search":
		r.print("%s", strings.Join(s.search, " "))
	default:
		return r.usage("dnsshow nameservers|search")
	}
	return true
}

// dnslookup answers from the lab table through the configured DNS: with no nameserver nothing
// resolves, as on a real SVM. An IP literal resolves to its reverse name when the lab set one and
// to itself otherwise (the lab's reading of "like host").
func (s *SVM) cmdDNSLookup(r *run, args []string) bool {
	if len(args) != 1 {
		return r.usage("dnslookup hostname|ip")
	}
	q := args[0]
	if _, err := netip.ParseAddr(q); err == nil {
		if name, ok := s.reverse[q]; ok && len(s.nameservers) > 0 {
			r.print("%s", name)
		} else {
			r.print("%s", q)
		}
		return true
	}
	if len(s.nameservers) == 0 {
		return r.fail(";; connection timed out; no servers could be reached")
	}
	ip, ok := s.hosts[strings.TrimSuffix(strings.ToLower(q), ".")]
	if !ok {
		return r.fail("Host %s not found: 3(NXDOMAIN)", q)
	}
	r.print("%s", ip)
	return true
}

func (s *SVM) cmdGetDNSHostname(r *run, args []string) bool {
	if len(args) != 0 {
		return r.usage("getdnshostname")
	}
	name, ok := s.reverse[s.ip]
	if !ok || len(s.nameservers) == 0 {
		return r.fail("0100 Could not look up %s in DNS.", s.ip)
	}
	r.print("%s", name)
	return true
}

// builtinZones answer when the host has no tz database.
var builtinZones = map[string]string{
	"UTC": "UTC", "GMT": "GMT", "Etc/UTC": "UTC", "Europe/Berlin": "CET", "Europe/Moscow": "MSK",
	"Europe/London": "GMT", "America/New_York": "EST", "Asia/Tokyo": "JST",
}

func loadZone(name string) (*time.Location, error) {
	if strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return nil, fmt.Errorf("bad zone %s", name)
	}
	return time.LoadLocation(name)
}

func (s *SVM) cmdTimezone(r *run, args []string) bool {
	if len(args) != 1 {
		return r.usage("timezone name")
	}
	abbr, ok := builtinZones[args[0]]
	if loc, err := loadZone(args[0]); err == nil && args[0] != "Local" && args[0] != "" {
		abbr, _ = time.Now().In(loc).Zone()
		ok = true
	}
	if !ok {
		return r.fail("Wrong time zone format %s.", args[0])
	}
	s.timezone = args[0] // applied at the next boot
	r.print("time zone changed to '%s' (%s)", args[0], abbr)
	return true
}

var hostnameRE = domainRE

func validPort(p string) (int, bool) {
	n, err := strconv.Atoi(p)
	return n, err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}

func (s *SVM) cmdNagent(r *run, args []string) bool {
	if len(args) < 2 || len(args) > 3 {
		return r.usage("nagent address sslport [port]")
	}
	if !s.nagent.Installed {
		return r.fail("klnagent not installed.")
	}
	addr := args[0]
	if _, err := netip.ParseAddr(addr); err != nil && !hostnameRE.MatchString(addr) {
		return r.fail("Wrong address format %s.", addr)
	}
	ports := []int{0, 0}
	for i, p := range args[1:] {
		n, ok := validPort(p)
		if !ok {
			return r.fail("Wrong port format %s.", p)
		}
		ports[i] = n
	}
	if !s.nagent.Configured {
		r.print("Execute automatic installation")
		r.print("Kaspersky Network Agent is installed.")
		r.print("Binaries were installed in /opt/kaspersky/klnagent64/bin")
		r.print("klnagent64.service is not a native service, redirecting to /sbin/chkconfig.")
		r.print("Executing /sbin/chkconfig klnagent64 on")
	} else {
		r.print("Checking command-line arguments...OK")
		r.print("Writing new settings...OK")
		r.print("Restarting Network Agent...")
		r.print("Operation completed successfully !")
	}
	s.nagent.Configured = true
	s.nagent.Address, s.nagent.SSLPort, s.nagent.Port = addr, ports[0], ports[1]
	if hook := s.cfg.Hooks.Nagent; hook != nil {
		r.after = append(r.after, func() { hook(s, addr, ports[0], ports[1]) })
	}
	return true
}

// hasNagentInstallLocked: nagentinstall exists only on 6.3+ images (and on any image built
// without Network Agent); older SVMs answer it as an unknown command.
func (s *SVM) hasNagentInstallLocked() bool {
	if s.cfg.NeedsNagentInstall {
		return true
	}
	parts := strings.SplitN(s.cfg.Version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (major > 6 || major == 6 && minor >= 3)
}

const nagentDistroDir = "/var/opt/kaspersky/klconfig/klnagent_distro/"

func (s *SVM) cmdNagentInstall(r *run, args []string) bool {
	if len(args) != 0 {
		return r.usage("nagentinstall")
	}
	switch len(s.packages) {
	case 0:
		return r.fail("Network Agent package not found in %s", nagentDistroDir)
	case 1:
	default:
		return r.fail("More than one Network Agent package found: %s", strings.Join(s.packages, " "))
	}
	if !strings.HasSuffix(s.packages[0], ".deb") {
		return r.fail("Network Agent installation failed with 1")
	}
	r.print("Installing %s%s", nagentDistroDir, s.packages[0])
	r.print("Kaspersky Network Agent is installed.")
	s.nagent.Installed = true
	return true
}

var (
	serviceNames = []string{"klnagent", "network", "network_local", "scanserver", "sshd"}
	actionVerbs  = map[string]string{"start": "Starting", "stop": "Stopping", "restart": "Restarting"}
)

func (s *SVM) cmdManageServices(r *run, args []string) bool {
	if len(args) < 1 || len(args) > 4 {
		return r.usage("manageservices start|stop|restart service1 [service2] [service3]")
	}
	action, services := args[0], args[1:]
	if len(services) == 0 {
		return r.fail("no services selected")
	}
	for _, svc := range services {
		if !slices.Contains(serviceNames, svc) {
			return r.fail("unknown service %s", svc)
		}
	}
	verb, known := actionVerbs[action]
	if !known {
		return r.fail("could not %s klnagent64", action)
	}
	for _, svc := range services {
		switch svc {
		case "klnagent":
			// The vendor example prints nothing for klnagent.
			if !s.nagent.Installed && action != "stop" {
				return r.fail("could not %s klnagent64 - start wait failed", action)
			}
		case "scanserver":
			r.print("%s la-scanserver (via systemctl):[OK]", verb)
		case "sshd":
			s.sshdStopped = action == "stop"
			_ = s.syncListenerLocked() // a failed re-listen leaves sshd down, as a real failed start would
		case "network":
			s.networkServiceLocked(r, action, true)
		case "network_local":
			s.networkServiceLocked(r, action, false)
		}
	}
	return true
}

// networkServiceLocked acts on the network service. `network` is asynchronous (klconfig returns
// first, the change lands NetworkRestartDelay later); `network_local` is synchronous. While the SVM
// is not serving (first boot) there is no session to protect, so both act at once.
func (s *SVM) networkServiceLocked(r *run, action string, async bool) {
	act := func() []func() {
		if action == "stop" {
			s.networkDown = true
			s.dropLocked()
			return nil
		}
		s.networkDown = false
		return s.applyNetworkLocked()
	}
	if async && s.ln != nil {
		s.laterLocked(s.cfg.NetworkRestartDelay, act)
		return
	}
	r.after = append(r.after, act()...)
}

// applyNetworkLocked applies the configured management interface address: on a change it drops
// every session and listens on the new IP with the same port. It returns the hook calls to make.
func (s *SVM) applyNetworkLocked() []func() {
	newIP := s.configuredIPLocked()
	old := s.ip
	if newIP == old {
		_ = s.syncListenerLocked() // coming back from `stop network`; failure leaves it unreachable
		return nil
	}
	s.dropLocked()
	s.ip = newIP
	_ = s.syncListenerLocked() // an address that cannot be bound leaves the SVM unreachable, as on a wrong network
	if hook := s.cfg.Hooks.AddressChanged; hook != nil {
		return []func(){func() { hook(s, old, newIP) }}
	}
	return nil
}

// passwordRE: Latin letters, digits and the vendor's list of special characters, 1..60 of them.
var passwordRE = regexp.MustCompile(`^[A-Za-z0-9!#$%&'()*"+,\-./\\:;<=>_?@\[\]^` + "`" + `{|}~]{1,60}$`)

func (s *SVM) cmdPasswd(r *run, args []string) bool {
	if len(args) != 1 {
		return r.usage("passwd username")
	}
	user := args[0]
	if user != "klconfig" && user != "root" {
		return r.fail("passwd: user '%s' does not exist", user)
	}
	if r.noIn || !passwordRE.MatchString(r.stdin) {
		return r.fail("0130 Invalid password.")
	}
	s.passwords[user] = r.stdin
	s.passwordChanges[user]++
	return true
}

func (s *SVM) cmdReboot(r *run) {
	s.laterLocked(s.cfg.RebootDelay, s.goDownLocked)
}

func (s *SVM) goDownLocked() []func() {
	s.rebooting = true
	s.dropLocked()
	s.laterLocked(s.cfg.RebootDowntime, func() []func() {
		// Boot: configured settings take effect, services start, the first startup script runs.
		oldIP := s.ip
		s.bootLocked()
		after := s.firstBootLocked(s.firstBootCmds)
		_ = s.syncListenerLocked() // unbindable address: the SVM stays unreachable
		newIP := s.ip
		if hook := s.cfg.Hooks.AddressChanged; hook != nil && newIP != oldIP {
			after = append(after, func() { hook(s, oldIP, newIP) })
		}
		if hook := s.cfg.Hooks.Rebooted; hook != nil {
			after = append(after, func() { hook(s) })
		}
		return after
	})
	return nil
}

func (s *SVM) cmdRollbackPatch(r *run, args []string) bool {
	if len(args) > 1 {
		return r.usage("rollbackpatch [patchid]")
	}
	// The lab's SVMs never carry a patch: the vendor's "nothing to roll back" answer, which still
	// ends with KLCONFIG OK.
	r.print("Current product version: %s", s.cfg.Version)
	r.print("ERROR: rollback: There is no last installed patch.")
	return true
}

// cmdSetSSHKey: the argument format is NOT FOUND in the vendor docs. The lab assumes the public
// key in authorized_keys format as the arguments (`setsshkey ssh-ed25519 AAAA... [comment]`) and
// adds it to the keys already authorised (same key twice is stored once).
func (s *SVM) cmdSetSSHKey(r *run, args []string) bool {
	if len(args) < 2 {
		return r.usage("setsshkey type key [comment]")
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Join(args, " ")))
	if err != nil {
		return r.fail("Wrong key format.")
	}
	for _, k := range s.authorizedKeys {
		if string(k.Marshal()) == string(key.Marshal()) {
			return true
		}
	}
	s.authorizedKeys = append(s.authorizedKeys, key)
	return true
}
