package fleet

import (
	"slices"
	"sort"
	"strings"
)

// hostIndex finds the KSC host of a VM by name, DNS name, FQDN and IP.
// None of those is unique in KSC (the vendor says so), so a VM whose keys
// lead to more than one host is reported as ambiguous, never guessed.
type hostIndex struct {
	hosts []KSCHost
	byKey map[string][]int
}

func newHostIndex(hosts []KSCHost) *hostIndex {
	idx := &hostIndex{hosts: hosts, byKey: map[string][]int{}}
	for i, h := range hosts {
		for _, k := range hostKeys(h) {
			idx.byKey[k] = append(idx.byKey[k], i)
		}
	}
	return idx
}

func hostKeys(h KSCHost) []string {
	return matchKeys([2]string{"n:", h.DisplayName}, [2]string{"n:", h.DNSName}, [2]string{"n:", h.FQDN},
		[2]string{"n:", shortName(h.FQDN)}, [2]string{"ip:", h.IP})
}

func vmKeys(v VM) []string {
	return matchKeys([2]string{"n:", v.Name}, [2]string{"n:", v.HostName}, [2]string{"ip:", v.IP})
}

// matchKeys normalises (kind prefix, value) pairs into lookup keys: names
// compare case-insensitively and without a trailing dot; empty values are
// dropped.
func matchKeys(pairs ...[2]string) []string {
	var keys []string
	for _, p := range pairs {
		if v := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(p[1])), "."); v != "" {
			keys = append(keys, p[0]+v)
		}
	}
	return keys
}

func shortName(fqdn string) string {
	if i := strings.IndexByte(fqdn, '.'); i > 0 {
		return fqdn[:i]
	}
	return ""
}

// match returns the one KSC host of vm, or nil; when several hosts match
// it returns nil and their display names.
func (idx *hostIndex) match(vm VM) (*KSCHost, []string) {
	// A VM's keys lead to one host or a few: a slice, not a set, so the
	// thousands of VMs of a fleet allocate nothing here.
	var buf [4]int
	found := buf[:0]
	for _, k := range vmKeys(vm) {
		for _, i := range idx.byKey[k] {
			if !slices.Contains(found, i) {
				found = append(found, i)
			}
		}
	}
	if len(found) == 1 {
		return &idx.hosts[found[0]], nil
	}
	var names []string
	for _, i := range found {
		names = append(names, idx.hosts[i].DisplayName+" ("+idx.hosts[i].ID+")")
	}
	sort.Strings(names)
	return nil, names
}
