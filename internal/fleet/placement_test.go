package fleet

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSVMProblemsPerHypervisor(t *testing.T) {
	r := rules()
	r.MarkRole, r.MarkVersion, r.RoleSVM, r.MarkHost = "role", "version", "svm", "host"
	svm := func(moid, host, home, power string) VM {
		return VM{Name: "svm-" + moid, Moid: moid, Host: host, PowerState: power,
			Marks: map[string]string{"role": "svm", "version": "6.2.0.200", "host": home}}
	}
	cases := []struct {
		name     string
		vm       VM
		pin      *Pin
		host     string // hypervisor the problem is reported on
		problems []string
	}{
		{name: "in place", vm: svm("a", "esx1", "esx1", "poweredOn"), pin: &Pin{Pinned: true}, host: "esx1", problems: []string{}},
		{name: "pin not read", vm: svm("a", "esx1", "esx1", "poweredOn"), host: "esx1", problems: []string{}},
		{name: "moved", vm: svm("a", "esx2", "esx1", "poweredOn"), pin: &Pin{Pinned: true}, host: "esx1",
			problems: []string{"SVM svm-a moved to esx2: it protects only the VMs of the host it runs on"}},
		{name: "off", vm: svm("a", "esx1", "esx1", "poweredOff"), pin: &Pin{Pinned: true}, host: "esx1",
			problems: []string{"SVM svm-a is off"}},
		{name: "unpinned", vm: svm("a", "esx1", "esx1", "poweredOn"), pin: &Pin{Missing: []string{"DRS override", "HA override"}}, host: "esx1",
			problems: []string{"SVM svm-a is not pinned to its host (missing: DRS override, HA override)"}},
		{name: "no host mark: judged where it runs", vm: svm("a", "esx3", "", "poweredOff"), host: "esx3",
			problems: []string{"SVM svm-a is off"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rr := r
			if c.pin != nil {
				rr.Pins = map[string]Pin{c.vm.Moid: *c.pin}
			}
			f := Build([]VM{c.vm}, nil, rr)
			require.Len(t, f.SVMs, 1)
			var got []string
			for _, h := range f.Hypervisors {
				if h.Name == c.host {
					got = h.Problems
				} else {
					assert.Empty(t, h.Problems, h.Name)
				}
			}
			assert.Equal(t, c.problems, got)
			assert.Equal(t, len(c.problems), f.Summary.Problems)
		})
	}
}
