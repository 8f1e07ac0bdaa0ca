package klconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/crypto/ssh"
)

// safeArg is every character a klconfig argument needs (IPs, names, tz names like Etc/GMT+3,
// base64 keys) and nothing a shell or the SVM's argument splitting could act on: no whitespace,
// quotes, `;`, `$`, backquote, `|`, `&`, redirections, globs or newlines.
var safeArg = regexp.MustCompile(`^[A-Za-z0-9._:/+=@,-]+$`)

func checkArg(a string) error {
	if a == "" {
		return errors.New("empty argument")
	}
	if !safeArg.MatchString(a) {
		return fmt.Errorf("argument %q holds a character that is not allowed (whitespace, quotes, ';' and shell characters are refused)", truncate(a, 40))
	}
	return nil
}

// build validates name and args and returns the command.
func build(name string, args ...string) (Command, error) {
	c := Command{Name: name, Args: args}
	if _, err := c.Line(); err != nil {
		return Command{}, err
	}
	return c, nil
}

func must(c Command, err error) Command {
	if err != nil {
		panic(err) // only for constant commands, which cannot fail
	}
	return c
}

var (
	ifaceRE    = regexp.MustCompile(`^[a-z][a-z0-9]{0,14}$`)
	hostnameRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)
	tzRE       = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$`)
	patchRE    = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

func ipv4(what, v string) error {
	if a, err := netip.ParseAddr(v); err != nil || !a.Is4() {
		return fmt.Errorf("klconfig: %s %q is not an IPv4 address", what, truncate(v, 40))
	}
	return nil
}

// maxHostname is DNS's limit on a name's length (RFC 1035 3.1).
const maxHostname = 253

// maxTZ bounds a tz database name; the longest in the database is about 30 characters.
const maxTZ = 64

func isHostname(v string) bool { return len(v) <= maxHostname && hostnameRE.MatchString(v) }

func hostOrIP(what, v string) error {
	if _, err := netip.ParseAddr(v); err == nil || isHostname(v) {
		return nil
	}
	return fmt.Errorf("klconfig: %s %q is neither an IP address nor a host name", what, truncate(v, 40))
}

func iface(v string) error {
	if !ifaceRE.MatchString(v) {
		return fmt.Errorf("klconfig: interface name %q is not valid", truncate(v, 40))
	}
	return nil
}

// APIVersion returns the script API version (1.0.0 on every documented release).
func APIVersion() Command { return must(build("apiversion")) }

// Version returns the Protection Server version.
func Version() Command { return must(build("version")) }

// Test prints the SVM information block; read it with ParseTest.
func Test() Command { return must(build("test")) }

// Network sets a static address on iface; gw may be "" (set a gateway on one interface only).
// Applied at reboot or `manageservices restart network`.
func Network(ifaceName, ip, mask, bcast, gw string) (Command, error) {
	if err := iface(ifaceName); err != nil {
		return Command{}, err
	}
	for _, f := range []struct{ what, v string }{{"ip", ip}, {"netmask", mask}, {"broadcast", bcast}} {
		if err := ipv4(f.what, f.v); err != nil {
			return Command{}, err
		}
	}
	args := []string{ifaceName, ip, mask, bcast}
	if gw != "" {
		if err := ipv4("gateway", gw); err != nil {
			return Command{}, err
		}
		args = append(args, gw)
	}
	return build("network", args...)
}

// DHCP switches iface to DHCP; primary makes it carry the default route and DNS.
func DHCP(ifaceName string, primary bool) (Command, error) {
	if err := iface(ifaceName); err != nil {
		return Command{}, err
	}
	yn := "no"
	if primary {
		yn = "yes"
	}
	return build("dhcp", ifaceName, yn)
}

// DNS replaces the DNS servers (none clears them). It also clears the search list: send
// DNSSearch after it. The vendor's maximum count is NOT FOUND, so the SVM is left to judge it.
func DNS(servers ...string) (Command, error) {
	for _, s := range servers {
		if _, err := netip.ParseAddr(s); err != nil {
			return Command{}, fmt.Errorf("klconfig: dns server %q is not an IP address", truncate(s, 40))
		}
	}
	return build("dns", servers...)
}

// DNSSearch replaces the search domains, at most three (none clears them).
func DNSSearch(domains ...string) (Command, error) {
	if len(domains) > 3 {
		return Command{}, fmt.Errorf("klconfig: dnssearch takes at most 3 domains, got %d", len(domains))
	}
	for _, d := range domains {
		if !isHostname(d) {
			return Command{}, fmt.Errorf("klconfig: search domain %q is not a domain name", truncate(d, 40))
		}
	}
	return build("dnssearch", domains...)
}

// DNSShow kinds.
const (
	DNSNameservers = "nameservers"
	DNSSearchList  = "search"
)

// DNSShow reads DNS servers (DNSNameservers) or search domains (DNSSearchList); see ParseDNSShow.
func DNSShow(kind string) (Command, error) {
	if kind != DNSNameservers && kind != DNSSearchList {
		return Command{}, fmt.Errorf("klconfig: dnsshow kind %q: want nameservers or search", truncate(kind, 40))
	}
	return build("dnsshow", kind)
}

// DNSLookup resolves a name or address through the SVM's DNS (first record only).
func DNSLookup(name string) (Command, error) {
	if err := hostOrIP("dnslookup name", name); err != nil {
		return Command{}, err
	}
	return build("dnslookup", name)
}

// GetDNSHostname reverse-resolves the primary interface's address.
func GetDNSHostname() Command { return must(build("getdnshostname")) }

// Timezone sets the tz database zone (effective after reboot).
func Timezone(tz string) (Command, error) {
	if len(tz) > maxTZ || !tzRE.MatchString(tz) {
		return Command{}, fmt.Errorf("klconfig: time zone %q is not a tz database name", truncate(tz, 40))
	}
	return build("timezone", tz)
}

// ConnectorLangs are the languages connectorlang accepts.
var ConnectorLangs = []string{"de", "en", "fr", "ja", "ru", "zh-Hans", "zh-Hant"}

// ConnectorLang sets the Network Agent connector language (effective after scanserver restart).
func ConnectorLang(lang string) (Command, error) {
	if !slices.Contains(ConnectorLangs, lang) {
		return Command{}, fmt.Errorf("klconfig: connector language %q: want one of %v", truncate(lang, 40), ConnectorLangs)
	}
	return build("connectorlang", lang)
}

// Nagent sets the Administration Server connection; port 0 leaves the non-SSL port out.
func Nagent(addr string, sslPort, port int) (Command, error) {
	if err := hostOrIP("administration server address", addr); err != nil {
		return Command{}, err
	}
	if sslPort < 1 || sslPort > 65535 || port < 0 || port > 65535 {
		return Command{}, fmt.Errorf("klconfig: nagent ports %d/%d out of range", sslPort, port)
	}
	args := []string{addr, strconv.Itoa(sslPort)}
	if port != 0 {
		args = append(args, strconv.Itoa(port))
	}
	return build("nagent", args...)
}

// NagentInstall installs Network Agent from the package uploaded to the SVM (6.3 only).
func NagentInstall() Command { return must(build("nagentinstall")) }

// Service actions and names for ManageServices.
var (
	ServiceActions = []string{"start", "stop", "restart"}
	Services       = []string{"klnagent", "network", "network_local", "scanserver", "sshd"}
)

// ManageServices starts, stops or restarts 1 to 3 services. `network` is asynchronous on the SVM:
// check the result no sooner than 20 s later, at the new address if it changed.
func ManageServices(action string, services ...string) (Command, error) {
	if !slices.Contains(ServiceActions, action) {
		return Command{}, fmt.Errorf("klconfig: manageservices action %q: want one of %v", truncate(action, 40), ServiceActions)
	}
	if len(services) < 1 || len(services) > 3 {
		return Command{}, fmt.Errorf("klconfig: manageservices takes 1 to 3 services, got %d", len(services))
	}
	for _, s := range services {
		if !slices.Contains(Services, s) {
			return Command{}, fmt.Errorf("klconfig: unknown service %q: want one of %v", truncate(s, 40), Services)
		}
	}
	return build("manageservices", append([]string{action}, services...)...)
}

// passwordRE is the vendor rule: 1..60 of Latin letters, digits and the listed special characters.
var passwordRE = regexp.MustCompile(`^[A-Za-z0-9!#$%&'()*"+,\-./\\:;<=>_?@\[\]^` + "`" + `{|}~]{1,60}$`)

// Passwd changes the password of user (klconfig or root). The password travels on stdin only.
// Changing klconfig's password changes the credential of every later call.
func Passwd(user, newPassword string) (Command, error) {
	if user != "klconfig" && user != "root" {
		return Command{}, fmt.Errorf("klconfig: passwd user %q: want klconfig or root", truncate(user, 40))
	}
	if !passwordRE.MatchString(newPassword) {
		// Never echo the password, not even a part of it.
		return Command{}, errors.New("klconfig: new password breaks the vendor rules: 1-60 characters, Latin letters, digits and !#$%&'()*\"+,-./\\:;<=>_?@[]^`{|}~")
	}
	c, err := build("passwd", user)
	c.Stdin = []byte(newPassword + "\n")
	return c, err
}

// SetSSHKey authorises a public key for klconfig. pubkey is an authorized_keys line; only the key
// type and base64 blob are sent (the comment is dropped: it could hold anything). The vendor's
// argument format is NOT FOUND; the lab accepts `setsshkey <type> <base64>`.
func SetSSHKey(pubkey string) (Command, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pubkey))
	if err != nil {
		return Command{}, fmt.Errorf("klconfig: setsshkey: parse public key: %w", err)
	}
	line := string(ssh.MarshalAuthorizedKey(key)) // "type base64\n"
	var typ, blob string
	if _, err := fmt.Sscan(line, &typ, &blob); err != nil {
		return Command{}, fmt.Errorf("klconfig: setsshkey: %w", err)
	}
	return build("setsshkey", typ, blob)
}

// Reboot restarts the SVM one minute later; the call returns first.
func Reboot() Command { return must(build("reboot")) }

// RollbackPatch rolls back the last patch, or patch id when id is not "". "There is no last
// installed patch" comes back as an ERROR line with KLCONFIG OK.
func RollbackPatch(id string) (Command, error) {
	if id == "" {
		return build("rollbackpatch")
	}
	if !patchRE.MatchString(id) {
		return Command{}, fmt.Errorf("klconfig: patch id %q is not valid", truncate(id, 40))
	}
	return build("rollbackpatch", id)
}

// repeatable names the commands whose second run leaves the SVM as one run does: reads, and
// setters that replace a whole value. Not passwd (the first run changes the credential the second
// logs in with), nagent and nagentinstall (each run installs or restarts Network Agent), nor the
// actions manageservices, reboot and rollbackpatch.
var repeatable = map[string]bool{
	"apiversion": true, "version": true, "test": true, "dnsshow": true, "dnslookup": true, "getdnshostname": true,
	"network": true, "dhcp": true, "dns": true, "dnssearch": true, "timezone": true, "connectorlang": true,
	"setsshkey": true,
}

// Repeatable reports whether running c twice has the effect of running it once, so that a
// command whose connection dropped (ErrDropped) may be sent again.
func (c Command) Repeatable() bool { return repeatable[c.Name] }

// MaxLineBytes bounds a user-given command line: the longest real one (network with a
// gateway, setsshkey with an RSA-4096 key) is under 1 KiB.
const MaxLineBytes = 2048

// ErrPasswdInline: passwd reads the new password from standard input, so a user-given command
// line can only start it and leave it waiting (or, at first boot, halt the SVM). Modules point to
// their option that sends passwords on stdin.
var ErrPasswdInline = errors.New("klconfig: passwd reads the new password from standard input and cannot be given as a command line")

// Raw builds a user-given command (args[0] is the name) under the same argument rules, and a
// documented command under its own rules too (argument count and form, as the constructors
// check them), so what the SVM would refuse, or a megabyte "time zone", never reaches it.
// Undocumented names (and the first-boot pseudo-commands) get the general rules only.
func Raw(args ...string) (Command, error) {
	if len(args) == 0 {
		return Command{}, errors.New("klconfig: empty command")
	}
	c, err := build(args[0], args[1:]...)
	if err != nil {
		return Command{}, err
	}
	if n := len(strings.Join(args, " ")); n > MaxLineBytes {
		return Command{}, fmt.Errorf("klconfig: %s: command line of %d bytes is longer than the %d allowed", truncate(c.Name, 40), n, MaxLineBytes)
	}
	if err := checkKnown(c.Name, c.Args); err != nil {
		return Command{}, err
	}
	return c, nil
}

// checkKnown checks a documented command's arguments with its constructor.
func checkKnown(name string, a []string) error {
	count := func(min, max int) error {
		if len(a) < min || len(a) > max {
			if min == max {
				return fmt.Errorf("klconfig: %s takes %d arguments, got %d", name, min, len(a))
			}
			return fmt.Errorf("klconfig: %s takes %d to %d arguments, got %d", name, min, max, len(a))
		}
		return nil
	}
	opt := func(i int) string {
		if i < len(a) {
			return a[i]
		}
		return ""
	}
	var err error
	switch name {
	case "passwd":
		return ErrPasswdInline
	case "apiversion", "version", "test", "getdnshostname", "nagentinstall", "reboot":
		return count(0, 0)
	case "network":
		if err = count(4, 5); err == nil {
			_, err = Network(a[0], a[1], a[2], a[3], opt(4))
		}
	case "dhcp":
		if err = count(1, 2); err == nil && len(a) == 2 && a[1] != "yes" && a[1] != "no" {
			err = fmt.Errorf("klconfig: dhcp MakePrimary %q: want yes or no", truncate(a[1], 40))
		}
		if err == nil {
			_, err = DHCP(a[0], false)
		}
	case "dns":
		_, err = DNS(a...)
	case "dnssearch":
		_, err = DNSSearch(a...)
	case "dnsshow":
		if err = count(1, 1); err == nil {
			_, err = DNSShow(a[0])
		}
	case "dnslookup":
		if err = count(1, 1); err == nil {
			_, err = DNSLookup(a[0])
		}
	case "timezone":
		if err = count(1, 1); err == nil {
			_, err = Timezone(a[0])
		}
	case "connectorlang":
		if err = count(1, 1); err == nil {
			_, err = ConnectorLang(a[0])
		}
	case "nagent":
		if err = count(2, 3); err == nil {
			err = nagentArgs(a[0], a[1], opt(2))
		}
	case "manageservices":
		if err = count(2, 4); err == nil {
			_, err = ManageServices(a[0], a[1:]...)
		}
	case "rollbackpatch":
		if err = count(0, 1); err == nil {
			_, err = RollbackPatch(opt(0))
		}
	case "setsshkey":
		if err = count(2, 2); err == nil {
			_, err = SetSSHKey(a[0] + " " + a[1])
		}
	}
	return err
}

func nagentArgs(addr, ssl, port string) error {
	sslPort, err := strconv.Atoi(ssl)
	if err != nil {
		return fmt.Errorf("klconfig: nagent SslPort %q is not a number", truncate(ssl, 40))
	}
	p := 0
	if port != "" {
		if p, err = strconv.Atoi(port); err != nil || p == 0 {
			return fmt.Errorf("klconfig: nagent Port %q is not a port number", truncate(port, 40))
		}
	}
	_, err = Nagent(addr, sslPort, p)
	return err
}

// ParseLine turns one user-written command line ("dnslookup ksc.example.com")
// into a Command, as the SVM's forced command splits it: on spaces only.
// Line breaks and other control characters (tabs aside) are refused rather
// than split on, so one line can never become two commands.
func ParseLine(line string) (Command, error) {
	if strings.ContainsAny(line, "\r\n") {
		return Command{}, errors.New("klconfig: command line holds a line break: give one command per line")
	}
	if i := strings.IndexFunc(line, func(r rune) bool { return r != '\t' && unicode.IsControl(r) }); i >= 0 {
		return Command{}, fmt.Errorf("klconfig: command line holds a control character (%q) at byte %d", line[i], i)
	}
	return Raw(strings.Fields(line)...)
}
