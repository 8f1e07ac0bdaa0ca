// Package modules is the explicit table of the collection's modules, shared
// by the multi-call binary and the docs generator.
package modules

import (
	"github.com/ksvla/lightagent/internal/ansible"
	agentfacts "github.com/ksvla/lightagent/modules/agent_facts"
	kscpurge "github.com/ksvla/lightagent/modules/ksc_purge"
	ksctask "github.com/ksvla/lightagent/modules/ksc_task"
	runlock "github.com/ksvla/lightagent/modules/run_lock"
	svmdeploy "github.com/ksvla/lightagent/modules/svm_deploy"
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
		{Name: "run_lock", New: runlock.New},
		{Name: "svm_deploy", New: svmdeploy.New},
		{Name: "svm_klconfig", New: svmklconfig.New},
		{Name: "svm_remove", New: svmremove.New},
	}
}
