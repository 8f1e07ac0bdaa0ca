package svm

import (
	"maps"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// State is a snapshot of what the SVM holds. It never carries a password: only how many times each
// account's password was changed.
type State struct {
	Name, Version, ProductLine, APIVersion string
	IP                                     string // management interface address now
	Addr                                   string // "ip:port" served now, "" when not answering

	PoweredOn, Serving, Rebooting bool
	BootFailed                    bool // passwd in the first startup script halted the boot
	BootConfigDone                bool // the boot_config_done marker exists

	Nameservers   []string
	Search        []string
	Timezone      string // configured (effective after the next boot)
	ConnectorLang string
	Nagent        Nagent
	// Interfaces as configured (applied at network restart or boot), by name.
	Interfaces map[string]Interface
	// AuthorizedKeys in authorized_keys format without comment.
	AuthorizedKeys []string
	// PasswordChanges counts successful `passwd <user>` per user.
	PasswordChanges map[string]int
	ResultsLog      []string // /var/opt/kaspersky/klconfig/results.log
	BootConfigLog   []string // /var/log/kaspersky/la/boot_config.log
}

// Nagent is the Network Agent's state on the SVM.
type Nagent struct {
	Installed  bool
	Configured bool // nagent ran at least once
	Address    string
	SSLPort    int
	Port       int // 0 when not given
}

// Interface is one network interface's configuration.
type Interface struct {
	Mode                            string // "static" or "dhcp"
	IP, Netmask, Broadcast, Gateway string // static only
	Primary                         bool   // dhcp: carries default route and DNS
}

// State returns a snapshot; the caller may keep and modify it.
func (s *SVM) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{
		Name: s.cfg.Name, Version: s.cfg.Version, ProductLine: s.cfg.ProductLine, APIVersion: s.cfg.APIVersion,
		IP:              s.ip,
		PoweredOn:       s.poweredOn,
		Serving:         s.ln != nil,
		Rebooting:       s.rebooting,
		BootFailed:      s.bootFailed,
		BootConfigDone:  s.bootDone,
		Nameservers:     slices.Clone(s.nameservers),
		Search:          slices.Clone(s.search),
		Timezone:        s.timezone,
		ConnectorLang:   s.connectorLang,
		Nagent:          s.nagent,
		Interfaces:      maps.Clone(s.ifaces),
		PasswordChanges: maps.Clone(s.passwordChanges),
		ResultsLog:      slices.Clone(s.resultsLog),
		BootConfigLog:   slices.Clone(s.bootLog),
	}
	if s.ln != nil {
		st.Addr = s.ln.Addr().String()
	}
	for _, k := range s.authorizedKeys {
		st.AuthorizedKeys = append(st.AuthorizedKeys, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))))
	}
	return st
}
