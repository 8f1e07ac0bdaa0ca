package svmklconfig

import (
	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/klconfig"
	"github.com/ksvla/lightagent/modules/conn"
)

// Environment variables read when an option is not set (AWX credential injection uses them).
const (
	EnvPassword          = "KSVLA_KLCONFIG_PASSWORD"
	EnvPasswordFile      = "KSVLA_KLCONFIG_PASSWORD_FILE"
	EnvPrivateKeyFile    = "KSVLA_KLCONFIG_PRIVATE_KEY_FILE"
	EnvImagePassword     = "KSVLA_KLCONFIG_IMAGE_PASSWORD"
	EnvImagePasswordFile = "KSVLA_KLCONFIG_IMAGE_PASSWORD_FILE"
)

// DefaultRecordPath is where the record of applied settings lives on the controller.
const DefaultRecordPath = "~/.ansible/ksvla/klconfig"

// Options are svm_klconfig's decoded options. A nil pointer or nil slice is a setting the task
// does not manage; an empty list is a setting to clear.
type Options struct {
	ansible.Deadline
	Host                 string `json:"host"`
	Port                 int    `json:"port"`
	Username             string `json:"username"`
	Password             string `json:"password" ansible:"no_log"`
	PrivateKey           string `json:"private_key" ansible:"no_log"`
	PrivateKeyFile       string `json:"private_key_file"`
	PrivateKeyPassphrase string `json:"private_key_passphrase" ansible:"no_log"`
	KnownHosts           string `json:"known_hosts"`
	HostKey              string `json:"host_key"`
	HostKeyChecking      string `json:"host_key_checking"`
	WaitTimeout          int    `json:"wait_timeout"`
	ConnectTimeout       int    `json:"connect_timeout"`
	NetworkRestartWait   int    `json:"network_restart_wait"`

	Network             *NetworkOptions   `json:"network"`
	DNSServers          []string          `json:"dns_servers"`
	DNSSearch           []string          `json:"dns_search"`
	Timezone            string            `json:"timezone"`
	ConnectorLanguage   string            `json:"connector_language"`
	KSC                 *KSCOptions       `json:"ksc"`
	Passwords           *PasswordsOptions `json:"passwords"`
	SSHPublicKey        string            `json:"ssh_public_key"`
	Services            []string          `json:"services"`
	Commands            []string          `json:"commands"`
	CommandsChangedWhen string            `json:"commands_changed_when"`
	Gather              bool              `json:"gather"`
	RecordPath          string            `json:"record_path"`

	// First contact and records on the VM (option vm).
	VM            string               `json:"vm"`
	Datacenter    string               `json:"datacenter"`
	VCenter       *conn.VCenterOptions `json:"vcenter"`
	ImagePassword string               `json:"image_password" ansible:"no_log"`
}

// NetworkOptions is the management network setting.
type NetworkOptions struct {
	Mode      string `json:"mode"`
	Interface string `json:"interface"`
	Address   string `json:"address"`
	Netmask   string `json:"netmask"`
	Broadcast string `json:"broadcast"`
	Gateway   string `json:"gateway"`
	Primary   bool   `json:"primary"`
}

// KSCOptions is the Administration Server connection of the SVM's Network Agent.
type KSCOptions struct {
	Address string `json:"address"`
	SSLPort int    `json:"ssl_port"`
	Port    int    `json:"port"`
}

// PasswordsOptions are the account passwords to set.
type PasswordsOptions struct {
	Klconfig string `json:"klconfig" ansible:"no_log"`
	Root     string `json:"root" ansible:"no_log"`
}

func strs(s ...string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func spec() ansible.Spec {
	network := &ansible.Spec{
		Options: []ansible.Option{
			{Name: "mode", Type: ansible.TypeStr, Required: true, Choices: strs("static", "dhcp"),
				Description: []string{"V(static) sets O(network.address) with C(network); V(dhcp) switches the interface to DHCP with C(dhcp)."}},
			{Name: "interface", Type: ansible.TypeStr, Default: "eth0",
				Description: []string{"The SVM's network interface."}},
			{Name: "address", Type: ansible.TypeStr, Description: []string{"The static IPv4 address."}},
			{Name: "netmask", Type: ansible.TypeStr, Description: []string{"The network mask, e.g. V(255.255.255.0)."}},
			{Name: "broadcast", Type: ansible.TypeStr, Description: []string{"The broadcast address."}},
			{Name: "gateway", Type: ansible.TypeStr, Description: []string{"The default gateway; set it on one interface only."}},
			{Name: "primary", Type: ansible.TypeBool, Default: true,
				Description: []string{"With O(network.mode=dhcp): the interface carries the default route and the DNS servers."}},
		},
		RequiredIf: []ansible.RequiredIf{{Key: "mode", Value: "static", Requirements: []string{"address", "netmask", "broadcast"}}},
	}
	ksc := &ansible.Spec{Options: []ansible.Option{
		{Name: "address", Type: ansible.TypeStr, Required: true,
			Description: []string{"The Administration Server's IP address or FQDN."}},
		{Name: "ssl_port", Type: ansible.TypeInt, Default: 13000, Range: ansible.PortRange, Description: []string{"The Administration Server's SSL port."}},
		{Name: "port", Type: ansible.TypeInt, Default: 14000, Range: ansible.Between(0, 65535), Description: []string{"The Administration Server's non-SSL port; V(0) leaves it out."}},
	}}
	passwords := &ansible.Spec{Options: []ansible.Option{
		{Name: "klconfig", Type: ansible.TypeStr, NoLog: true,
			Description: []string{"The new configuration password of the C(klconfig) account.",
				"Later calls use it; when O(password) no longer logs in, the module tries this one, so a rerun of the same task works."}},
		{Name: "root", Type: ansible.TypeStr, NoLog: true, Description: []string{"The new password of the SVM's C(root) account."}},
	}}
	return ansible.Spec{
		Options: []ansible.Option{
			{Name: "host", Type: ansible.TypeStr,
				Description: []string{"The SVM's IP address or host name.",
					"With O(vm) it defaults to the address vCenter reports for the VM, and when given it must be one of the VM's addresses."}},
			{Name: "port", Type: ansible.TypeInt, Default: 22, Range: ansible.PortRange, Description: []string{"The SVM's SSH port."}},
			{Name: "username", Type: ansible.TypeStr, Default: "klconfig",
				Description: []string{"The klconfig account."}},
			{Name: "password", Type: ansible.TypeStr, NoLog: true, EnvFallback: []string{EnvPassword}, EnvFileFallback: []string{EnvPasswordFile},
				Description: []string{"The configuration password of O(username): the operator's.",
					"A password, a private key, or both are required; the key is tried first.",
					"When only O(image_password) logs in, the module changes the SVM's password to O(passwords.klconfig), or to this one when that is not set."}},
			{Name: "image_password", Type: ansible.TypeStr, NoLog: true, EnvFallback: []string{EnvImagePassword}, EnvFileFallback: []string{EnvImagePasswordFile},
				Description: []string{"The configuration password the SVM image ships with, which a freshly deployed SVM accepts.",
					"Tried after O(password) and O(passwords.klconfig); when it logs in, C(passwd klconfig) replaces it with the operator's password (O(passwords.klconfig), else O(password)), and later calls use that.",
					"With O(vm), the fact that it was replaced (a time, never a secret) is recorded on the VM."}},
			{Name: "private_key", Type: ansible.TypeStr, NoLog: true,
				Description: []string{"A private key (PEM text) authorised on the SVM with C(setsshkey)."}},
			{Name: "private_key_file", Type: ansible.TypePath, EnvFallback: []string{EnvPrivateKeyFile}, Check: ansible.CheckRegularFile,
				Description: []string{"A file holding the private key, instead of O(private_key)."}},
			{Name: "private_key_passphrase", Type: ansible.TypeStr, NoLog: true,
				Description: []string{"The passphrase of an encrypted private key."}},
			{Name: "known_hosts", Type: ansible.TypePath, Check: ansible.CheckRegularFile,
				Description: []string{"The OpenSSH known_hosts file the SVM's host key is checked against.",
					"Default C(~/.ssh/known_hosts) when O(host_key) is not set either."}},
			{Name: "host_key", Type: ansible.TypeStr,
				Description: []string{"The SVM's host key fingerprint as C(ssh-keygen -lf) prints it (V(SHA256:...)); only that key is accepted."}},
			{Name: "host_key_checking", Type: ansible.TypeStr, Default: "strict", Choices: strs("strict", "accept_new", "off"),
				Description: []string{"V(strict) accepts only a key in O(known_hosts) or equal to O(host_key).",
					"With O(vm), a host key recorded on the VM is always checked strictly, whatever this says, and the VM's first contact is trusted as O(vm) explains; this policy applies only to a VM with neither.",
					"V(accept_new) records an unknown SVM's key in O(known_hosts) for the next run (not in check mode) and refuses a changed key.",
					"V(off) accepts any key: for labs only."}},
			ansible.TimeoutOption(600),
			{Name: "wait_timeout", Type: ansible.TypeInt, Default: 300, Range: ansible.WaitRange,
				Description: []string{"Seconds to keep retrying, with backoff, while the SVM does not answer yet (freshly booted, network restarting)."}},
			{Name: "connect_timeout", Type: ansible.TypeInt, Default: 10, Range: ansible.SecondsRange,
				Description: []string{"Seconds one SSH connection (dial and handshake) may take."}},
			{Name: "network_restart_wait", Type: ansible.TypeInt, Default: 20, Range: ansible.WaitRange,
				Description: []string{"Seconds to wait after C(manageservices restart network) before looking for the SVM again.",
					"The restart is asynchronous on the SVM; the vendor says to check no sooner than 20 seconds later."}},
			{Name: "network", Type: ansible.TypeDict, Options: network,
				Description: []string{"The management network setting.",
					"A change is applied with C(network) or C(dhcp), then C(manageservices restart network); the module follows the SVM to O(network.address) and checks it answers there with the same host key. The result's RV(host) is where it answers."}},
			{Name: "dns_servers", Type: ansible.TypeList, Elements: ansible.TypeStr,
				Description: []string{"The DNS servers, in order; V([]) clears them. Read back with C(dnsshow nameservers).",
					"C(dns) clears the search list, so the search list (O(dns_search), or the one the SVM had) is set again after it."}},
			{Name: "dns_search", Type: ansible.TypeList, Elements: ansible.TypeStr,
				Description: []string{"The DNS search domains, at most three; V([]) clears them. Read back with C(dnsshow search)."}},
			{Name: "timezone", Type: ansible.TypeStr,
				Description: []string{"The time zone, a tz database name such as V(Europe/Berlin). Effective after the SVM's next reboot."}},
			{Name: "connector_language", Type: ansible.TypeStr, Choices: strs(klconfig.ConnectorLangs...),
				Description: []string{"The language of the Network Agent connector. A change restarts C(scanserver)."}},
			{Name: "ksc", Type: ansible.TypeDict, Options: ksc,
				Description: []string{"The Kaspersky Security Center Administration Server the SVM's Network Agent connects to (C(nagent)).",
					"When the SVM answers C(klnagent not installed.) (6.3 images), C(nagentinstall) runs first."}},
			{Name: "passwords", Type: ansible.TypeDict, Options: passwords,
				Description: []string{"Account passwords to set with C(passwd); they travel on the SSH session's standard input only."}},
			{Name: "ssh_public_key", Type: ansible.TypeStr,
				Description: []string{"A public key (authorized_keys line) to authorise for the klconfig account with C(setsshkey)."}},
			{Name: "services", Type: ansible.TypeList, Elements: ansible.TypeStr, Choices: strs(klconfig.Services...),
				Description: []string{"Services to restart when something changed, as a handler would (C(manageservices restart)).",
					"A O(connector_language) change restarts C(scanserver) in any case."}},
			{Name: "commands", Type: ansible.TypeList, Elements: ansible.TypeStr,
				Description: []string{"Raw klconfig command lines for anything else, e.g. V(rollbackpatch). Split on whitespace; each argument must pass the client's rules (no quotes, shell characters or whitespace inside), and a documented command's arguments must be what the SVM takes (count, form, length).",
					"C(passwd) is refused: it reads the password from standard input; set passwords with O(passwords).",
					"They run after the settings above and report a change, unless O(commands_changed_when=never)."}},
			{Name: "commands_changed_when", Type: ansible.TypeStr, Default: "always", Choices: strs("always", "never"),
				Description: []string{"V(never) declares O(commands) read-only (for example V(dnslookup ksc.example.com)): they then run in check mode too and never report a change."}},
			{Name: "gather", Type: ansible.TypeBool, Default: false,
				Description: []string{"Return RV(klconfig): API version, Protection Server version, the C(test) block and the DNS settings."}},
			{Name: "record_path", Type: ansible.TypePath, Default: DefaultRecordPath,
				Description: []string{"The directory of the controller-side record of applied settings klconfig cannot read back (network, time zone, connector language, Administration Server, passwords, SSH key).",
					"One JSON file per SVM, named after its address, port and host key fingerprint, holding a SHA-256 digest per setting (salted and stretched for passwords; never a secret in clear).",
					"A setting whose desired value differs from the record is applied again. Deleting the file makes the next run apply those settings again, which is safe.",
					"With O(vm) the record lives on the VM in vCenter (custom attribute C(ksvla.klconfig)), where every controller finds it; this file is then only a cache, read when the VM holds no record yet."}},
			{Name: "vm", Type: ansible.TypeStr,
				Description: []string{"The SVM's VM name in vCenter (unique in O(datacenter)). The module then reads the SVM's address from vCenter and keeps its records on the VM, so any controller (a fresh AWX container too) sees them.",
					"First contact: when the VM carries the mark C(ksvla.first_contact=pending), which M(ksvla.lightagent.svm_deploy) sets on a VM it has just created, and no host key is recorded on it, the key the SVM presents at the address vCenter reports is trusted once, recorded on the VM (custom attribute C(ksvla.host_key)) and the mark cleared.",
					"From then on that key is checked strictly on every controller, with no known_hosts needed. A VM without the mark and without a recorded key is checked with O(known_hosts) or O(host_key); once verified that way its key is recorded on the VM too.",
					"Check mode and diff show these steps without doing them."}},
			{Name: "datacenter", Type: ansible.TypeStr,
				Description: []string{"The datacenter of O(vm). May be omitted when vCenter has exactly one datacenter."}},
			{Name: "vcenter", Type: ansible.TypeDict, Default: map[string]any{}, Options: func() *ansible.Spec { sp := conn.VCenterSpec(); return &sp }(),
				Description: []string{"The vCenter connection, with O(vm): the options of M(ksvla.lightagent.svm_deploy), nested because O(username), O(password) and O(port) here are the SVM's.",
					"Each sub-option falls back to its C(VMWARE_*) environment variable. Used only with O(vm)."}},
		},
		MutuallyExclusive: [][]string{{"private_key", "private_key_file"}, {"known_hosts", "host_key"}},
		RequiredOneOf:     [][]string{{"host", "vm"}},
		RequiredBy:        map[string][]string{"datacenter": {"vm"}},
		Insecure: []ansible.Insecure{{Option: "host_key_checking", Value: "off",
			Msg: "the SVM's SSH host key is not checked, so a machine posing as the SVM gets the klconfig password; use strict with host_key or known_hosts"}},
	}
}
