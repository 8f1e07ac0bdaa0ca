package fleet

import (
	"fmt"
	"strings"
)

// An SVM serves only the protected VMs of the host it runs on, so where it
// runs matters: moved by DRS or restarted elsewhere by HA, its host's
// agents lose it; powered off for maintenance, it stays off (autostart
// does not fire on leaving maintenance mode, and never in an HA cluster).

// Pin is how an SVM is held on its host, as vCenter reports it.
type Pin struct {
	Pinned  bool     `json:"pinned"`
	Missing []string `json:"missing,omitempty"` // "DRS override", "HA override", "autostart"
}

// SVMPlacement is where an SVM runs against where it belongs.
type SVMPlacement struct {
	// HomeHost is the host its host mark names; "" when it carries none
	// (deployed by the vendor's wizard or before host marks).
	HomeHost   string `json:"home_host,omitempty"`
	OnHomeHost bool   `json:"on_home_host"` // true when HomeHost is unknown
	PoweredOn  bool   `json:"powered_on"`
	// Pinned is nil when the placement was not read.
	Pinned     *bool    `json:"pinned,omitempty"`
	PinMissing []string `json:"pin_missing,omitempty"`
}

func placement(vm VM, r Rules) SVMPlacement {
	p := SVMPlacement{PoweredOn: vm.PoweredOn(), OnHomeHost: true}
	if r.MarkHost != "" {
		p.HomeHost = vm.Marks[r.MarkHost]
	}
	if p.HomeHost != "" {
		p.OnHomeHost = p.HomeHost == vm.Host
	}
	if pin, ok := r.Pins[vm.Moid]; ok {
		pinned := pin.Pinned
		p.Pinned, p.PinMissing = &pinned, pin.Missing
	}
	return p
}

// Own is the host the SVM belongs to: its home host when known.
func (s SVM) Own() string {
	if s.HomeHost != "" {
		return s.HomeHost
	}
	return s.Host
}

// Problems are what a person must see about the SVM, for its own host.
func (s SVM) Problems() []string {
	var out []string
	if !s.OnHomeHost {
		out = append(out, fmt.Sprintf("SVM %s moved to %s: it protects only the VMs of the host it runs on", s.Name, s.Host))
	}
	if !s.PoweredOn {
		out = append(out, fmt.Sprintf("SVM %s is %s", s.Name, strings.ToLower(strings.TrimPrefix(s.PowerState, "powered"))))
	}
	if s.Pinned != nil && !*s.Pinned {
		out = append(out, fmt.Sprintf("SVM %s is not pinned to its host (missing: %s)", s.Name, strings.Join(s.PinMissing, ", ")))
	}
	return out
}
