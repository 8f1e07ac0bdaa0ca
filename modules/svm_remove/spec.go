package svmremove

import (
	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/modules/conn"
	"github.com/ksvla/lightagent/modules/fleetopts"
)

// Options are svm_remove's decoded options.
type Options struct {
	ansible.Deadline
	conn.VCenterOptions
	conn.KSCOptions
	fleetopts.Options
	Name            string   `json:"name"`
	Names           []string `json:"names"`
	Version         string   `json:"version"`
	Force           bool     `json:"force"`
	ShutdownTimeout int      `json:"shutdown_timeout"`
}

// selected are the names of name or names.
func (o Options) selected() []string {
	if o.Name != "" {
		return []string{o.Name}
	}
	return o.Names
}

// selectors are the options that say which SVMs to remove; exactly one.
var selectors = []string{"name", "names", "version"}

func spec() ansible.Spec {
	own := ansible.Spec{
		Options: []ansible.Option{
			{Name: "name", Type: ansible.TypeStr,
				Description: []string{"The name of one SVM to remove.",
					"A name that no VM in scope carries is already absent; a VM of that name that is not a recognised SVM fails the run."}},
			{Name: "names", Type: ansible.TypeList, Elements: ansible.TypeStr,
				Description: []string{"The names of the SVMs to remove, as O(name)."}},
			{Name: "version", Type: ansible.TypeStr,
				Description: []string{"Remove every recognised SVM of this Protection Server version in scope, e.g. V(6.1.0.100).",
					"Versions compare numerically (V(6.1) equals V(6.1.0.0)); VMs of unknown version (unrecognised candidates) are never selected, only warned about."}},
			{Name: "force", Type: ansible.TypeBool, Default: false,
				Description: []string{"Skip the gates that need KSC, the Light Agent, preparation and unknown-VM gates (and so the need for KSC options); the replacement and last-SVM gates still apply.",
					"Every skipped gate is named in a warning."}},
			{Name: "shutdown_timeout", Type: ansible.TypeInt, Default: 120, Range: ansible.SecondsRange,
				Description: []string{"Seconds to wait for the guest OS to shut down (through VMware Tools) before the SVM is powered off hard."}},
			ansible.TimeoutOption(1800),
		},
		MutuallyExclusive: [][]string{selectors},
		RequiredOneOf:     [][]string{selectors},
	}
	return conn.VCenterSpec().Merge(conn.KSCSpec()).Merge(fleetopts.Spec()).Merge(own)
}
