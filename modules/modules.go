// Package modules is the explicit table of the collection's modules, shared
// by the multi-call binary and the docs generator.
package modules

import (
	"context"
	"fmt"

	"github.com/ksvla/lightagent/internal/ansible"
	agentfacts "github.com/ksvla/lightagent/modules/agent_facts"
	kscpurge "github.com/ksvla/lightagent/modules/ksc_purge"
	ksctask "github.com/ksvla/lightagent/modules/ksc_task"
	svmklconfig "github.com/ksvla/lightagent/modules/svm_klconfig"
	svmremove "github.com/ksvla/lightagent/modules/svm_remove"
)

// Collection is the collection's fully qualified name.
const Collection = "ksvla.lightagent"

// Registry lists every module, in the order the docs list them.
func Registry() ansible.Registry {
	return ansible.Registry{
		{Name: "agent_facts", New: agentfacts.New},
		{Name: "ksc_purge", New: kscpurge.New},
		{Name: "ksc_task", New: ksctask.New},
		{Name: "svm_deploy", New: pendingModule("svm_deploy", "Deploy a KSVLA SVM from an OVA/OVF onto one ESXi host")},
		{Name: "svm_klconfig", New: svmklconfig.New},
		{Name: "svm_remove", New: svmremove.New},
	}
}

// pending stands in for a module that is registered but not built yet: it
// documents itself and fails with a clear message instead of crashing.
type pending struct{ name, short string }

func pendingModule(name, short string) func() ansible.Module {
	return func() ansible.Module { return pending{name, short} }
}

func (p pending) Spec() ansible.Spec { return ansible.Spec{} }

func (p pending) Doc() ansible.Doc {
	return ansible.Doc{
		ShortDescription: p.short,
		Description:      []string{p.short + ".", "Not implemented yet: the module is registered so the collection's layout is stable."},
		CheckMode:        "none",
		DiffMode:         "none",
	}
}

func (p pending) Observe(context.Context, *ansible.Request, *ansible.Response) (ansible.State, error) {
	return nil, fmt.Errorf("module %s.%s is not implemented yet", Collection, p.name)
}

func (p pending) Plan(*ansible.Request, ansible.State, *ansible.Response) (ansible.Plan, error) {
	return ansible.NoChange{}, nil
}
