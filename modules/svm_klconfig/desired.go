package svmklconfig

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ksvla/lightagent/internal/klconfig"
)

// Setting names, as options and record keys.
const (
	setNetwork      = "network"
	setDNSServers   = "dns_servers"
	setDNSSearch    = "dns_search"
	setTimezone     = "timezone"
	setConnLang     = "connector_language"
	setKSC          = "ksc"
	setPwdKlconfig  = "passwords.klconfig"
	setPwdRoot      = "passwords.root"
	setSSHPublicKey = "ssh_public_key"
)

// recorded is a desired setting klconfig cannot read back: its command and the value the record
// keeps (the command line, which holds no secret).
type recorded struct {
	Setting string
	Cmd     klconfig.Command
	Value   string
}

// desired is the task's wish, with every command built and checked before any connection.
type desired struct {
	Network    *recorded // network or dhcp
	FollowTo   string    // where the SVM answers after a network change ("" = where it is)
	DNSServers []string  // nil: not managed
	DNSSearch  []string  // nil: not managed
	Recorded   []recorded
	Passwords  []password
	Services   []string // to restart after a change; network services kept apart
	NetRestart bool     // services asked for a network restart
	Raw        []klconfig.Command
	ReadOnly   bool // commands_changed_when=never: Raw are reads
}

type password struct {
	User string // klconfig or root
	Cmd  klconfig.Command
}

// buildDesired turns the options into checked commands. It makes no I/O.
func buildDesired(o Options) (desired, error) {
	var d desired
	if n := o.Network; n != nil {
		var cmd klconfig.Command
		var err error
		if n.Mode == "static" {
			cmd, err = klconfig.Network(n.Interface, n.Address, n.Netmask, n.Broadcast, n.Gateway)
			d.FollowTo = n.Address
		} else {
			cmd, err = klconfig.DHCP(n.Interface, n.Primary)
		}
		if err != nil {
			return d, fmt.Errorf("network: %w", err)
		}
		d.Network = &recorded{Setting: setNetwork, Cmd: cmd, Value: cmd.String()}
	}
	if o.DNSServers != nil {
		if _, err := klconfig.DNS(o.DNSServers...); err != nil {
			return d, fmt.Errorf("dns_servers: %w", err)
		}
		d.DNSServers = slices.Clone(o.DNSServers)
	}
	if o.DNSSearch != nil {
		if _, err := klconfig.DNSSearch(o.DNSSearch...); err != nil {
			return d, fmt.Errorf("dns_search: %w", err)
		}
		d.DNSSearch = slices.Clone(o.DNSSearch)
	}
	add := func(setting string, cmd klconfig.Command, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", setting, err)
		}
		d.Recorded = append(d.Recorded, recorded{Setting: setting, Cmd: cmd, Value: strings.Join(cmd.Args, " ")})
		return nil
	}
	if o.Timezone != "" {
		cmd, err := klconfig.Timezone(o.Timezone)
		if err := add(setTimezone, cmd, err); err != nil {
			return d, err
		}
	}
	if o.ConnectorLanguage != "" {
		cmd, err := klconfig.ConnectorLang(o.ConnectorLanguage)
		if err := add(setConnLang, cmd, err); err != nil {
			return d, err
		}
	}
	if o.KSC != nil {
		cmd, err := klconfig.Nagent(o.KSC.Address, o.KSC.SSLPort, o.KSC.Port)
		if err := add(setKSC, cmd, err); err != nil {
			return d, err
		}
	}
	if o.SSHPublicKey != "" {
		cmd, err := klconfig.SetSSHKey(o.SSHPublicKey)
		if err := add(setSSHPublicKey, cmd, err); err != nil {
			return d, err
		}
	}
	if p := o.Passwords; p != nil {
		// root first: after klconfig's own password changes, later sessions need the new one.
		for _, u := range []struct{ user, pw string }{{"root", p.Root}, {"klconfig", p.Klconfig}} {
			if u.pw == "" {
				continue
			}
			cmd, err := klconfig.Passwd(u.user, u.pw)
			if err != nil {
				return d, fmt.Errorf("passwords.%s: %w", u.user, err)
			}
			d.Passwords = append(d.Passwords, password{User: u.user, Cmd: cmd})
		}
	}
	for _, s := range o.Services {
		switch {
		case s == "network" || s == "network_local":
			d.NetRestart = true
		case !slices.Contains(d.Services, s):
			d.Services = append(d.Services, s)
		}
	}
	for i, line := range o.Commands {
		cmd, err := klconfig.ParseLine(line)
		if errors.Is(err, klconfig.ErrPasswdInline) {
			// The line is not quoted back: it may hold the password.
			return d, fmt.Errorf("commands[%d]: passwd is refused: it reads the new password from standard input; set passwords with the passwords option (passwords.klconfig, passwords.root), which sends them on stdin", i)
		}
		if err != nil {
			return d, fmt.Errorf("commands[%d]: %w", i, err)
		}
		d.Raw = append(d.Raw, cmd)
	}
	d.ReadOnly = o.CommandsChangedWhen == "never"
	return d, nil
}

// display is a command as results show it: passwd shows only `passwd <user>`, never its stdin.
func display(c klconfig.Command) string {
	return strings.Join(append([]string{c.Name}, c.Args...), " ")
}
