package modules

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	require.NoError(t, err)
	return dir
}

// The committed sidecar docs must be exactly what the specs generate, so
// ansible-doc never disagrees with the code. Run `make docs` after
// changing a spec.
func TestSidecarDocsMatchSpecs(t *testing.T) {
	for _, e := range Registry() {
		t.Run(e.Name, func(t *testing.T) {
			want, err := Sidecar(e)
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(root(t), "library", e.Name+".yml"))
			require.NoError(t, err, "run `make docs`")
			assert.Equal(t, string(want), string(got), "library/%s.yml is stale: run `make docs`", e.Name)

			var doc struct {
				Documentation struct {
					Module           string         `yaml:"module"`
					ShortDescription string         `yaml:"short_description"`
					Author           []string       `yaml:"author"`
					Options          map[string]any `yaml:"options"`
				} `yaml:"DOCUMENTATION"`
			}
			require.NoError(t, yaml.Unmarshal(got, &doc))
			assert.Equal(t, e.Name, doc.Documentation.Module)
			assert.NotEmpty(t, doc.Documentation.ShortDescription)
			assert.NotEmpty(t, doc.Documentation.Author)
			assert.Len(t, doc.Documentation.Options, len(e.New().Spec().Options))
		})
	}
}

// AnsibleModule warns about options that look like secrets but lack
// no_log; our specs must never need that warning.
var secretName = regexp.MustCompile(`(?i)(pass(word|wd|phrase)?|secret|private_key|token)$`)

func TestSecretOptionsAreNoLog(t *testing.T) {
	var walk func(t *testing.T, spec ansible.Spec, path string)
	walk = func(t *testing.T, spec ansible.Spec, path string) {
		for _, o := range spec.Options {
			if secretName.MatchString(o.Name) && o.Type != ansible.TypeBool && o.Type != ansible.TypePath {
				assert.True(t, o.NoLog, "option %s%s looks secret but is not no_log", path, o.Name)
			}
			assert.NotEmpty(t, o.Description, "option %s%s has no description", path, o.Name)
			if o.Options != nil {
				walk(t, *o.Options, path+o.Name+".")
			}
		}
	}
	for _, e := range Registry() {
		t.Run(e.Name, func(t *testing.T) { walk(t, e.New().Spec(), "") })
	}
}

func TestCollectionMetadata(t *testing.T) {
	var galaxy map[string]any
	b, err := os.ReadFile(filepath.Join(root(t), "galaxy.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &galaxy))
	for _, k := range []string{"namespace", "name", "version", "readme", "authors"} {
		assert.NotEmpty(t, galaxy[k], "galaxy.yml misses mandatory key %s", k)
	}
	assert.Equal(t, "ksvla", galaxy["namespace"])
	assert.Equal(t, "lightagent", galaxy["name"])

	var runtime struct {
		RequiresAnsible string              `yaml:"requires_ansible"`
		ActionGroups    map[string][]string `yaml:"action_groups"`
	}
	b, err = os.ReadFile(filepath.Join(root(t), "meta", "runtime.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &runtime))
	assert.Equal(t, ">=2.14.0", runtime.RequiresAnsible)
	require.Contains(t, runtime.ActionGroups, "vmware")
	require.Contains(t, runtime.ActionGroups, "ksc")
	for group, mods := range runtime.ActionGroups {
		for _, m := range mods {
			_, ok := Registry().Lookup(m)
			assert.True(t, ok, "action group %s lists unknown module %s", group, m)
		}
	}
}

// docs/modules is generated from the same specs as the sidecars; run
// `make docs` after changing a spec.
func TestModuleReferencePages(t *testing.T) {
	dir := filepath.Join(root(t), "docs", "modules")
	pages := ModulePages()
	for name, want := range pages {
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, "run `make docs`")
		assert.Equal(t, want, string(got), "docs/modules/%s is stale: run `make docs`", name)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.Contains(t, pages, e.Name(), "docs/modules/%s belongs to no module: remove it", e.Name())
	}
}

// Every module runs through the action plugin that picks the binary of the
// controller's platform; a module registered without its routing entry
// would be run as its documentation stub, a routing entry without a module
// would name one the collection does not ship. `make docs` writes the
// section from the registry.
func TestRuntimeRoutesEveryModuleToTheActionPlugin(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "meta", "runtime.yml"))
	require.NoError(t, err)
	var rt struct {
		PluginRouting struct {
			Modules map[string]struct {
				ActionPlugin string `yaml:"action_plugin"`
			} `yaml:"modules"`
		} `yaml:"plugin_routing"`
	}
	require.NoError(t, yaml.Unmarshal(b, &rt))
	for _, e := range Registry() {
		assert.Equal(t, ActionPlugin, rt.PluginRouting.Modules[e.Name].ActionPlugin,
			"meta/runtime.yml: plugin_routing.modules.%s.action_plugin: run `make docs`", e.Name)
	}
	for name, r := range rt.PluginRouting.Modules {
		_, ok := Registry().Lookup(name)
		assert.True(t, ok || r.ActionPlugin == "", "meta/runtime.yml routes %s, which modules/modules.go does not register: run `make docs`", name)
	}
	assert.Equal(t, string(Runtime(b)), string(b), "meta/runtime.yml's plugin_routing is stale: run `make docs`")
}

func TestRuntimeKeepsWhatItDoesNotGenerate(t *testing.T) {
	plain := routing(nil, "", "")
	tombstone := "    legacy_facts:\n      tombstone:\n        removal_version: 0.2.0\n        warning_text: Use agent_facts.\n"
	deprecation := "      deprecation:\n        removal_version: 0.3.0\n        warning_text: Use svm_remove.\n"
	lookup := "  lookup:\n    old:\n      redirect: ksvla.lightagent.new\n"
	for _, tc := range []struct{ name, in, want string }{
		{"section last", "a: 1\n# why\nplugin_routing:\n  modules:\n    old:\n      action_plugin: x\n",
			"a: 1\n# why\n" + plain},
		{"section between keys", "a: 1\nplugin_routing:\n  modules: {}\n\n# b\nb: 2\n",
			"a: 1\n" + plain + "\n# b\nb: 2\n"},
		{"no section", "a: 1", "a: 1\n" + plain},
		{"a removed module's tombstone, a deprecation and other plugins' routing stay",
			"plugin_routing:\n" + lookup + "  modules:\n    svm_deploy:\n" + deprecation + "      action_plugin: x\n" + tombstone,
			routing(map[string]string{"svm_deploy": deprecation}, tombstone, lookup)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, string(Runtime([]byte(tc.in))))
		})
	}
	got := string(Runtime([]byte("plugin_routing:\n" + lookup + "  modules:\n    svm_deploy:\n" + deprecation + tombstone)))
	var rt map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(got), &rt), got)
	assert.Contains(t, got, "    svm_deploy:\n      action_plugin: ksvla.lightagent.ksvla\n"+deprecation)
}

// library/ is what a checkout runs: a link to the binary and the docs
// sidecar per registered module (`make docs` writes both), nothing else.
func TestLibraryHoldsTheRegistry(t *testing.T) {
	dir := filepath.Join(root(t), "library")
	want := map[string]bool{}
	for _, e := range Registry() {
		want[e.Name], want[e.Name+".yml"] = true, true
		fi, err := os.Lstat(filepath.Join(dir, e.Name))
		if assert.NoError(t, err, "library/%s: run `make docs`", e.Name) {
			target, _ := os.Readlink(filepath.Join(dir, e.Name))
			assert.True(t, fi.Mode()&os.ModeSymlink != 0 && target == "../bin/ksvla", "library/%s is a link to ../bin/ksvla", e.Name)
		}
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, f := range entries {
		assert.True(t, want[f.Name()], "library/%s belongs to no registered module: remove it", f.Name())
	}
}

// The stub ansible-doc reads is valid Python whose strings hold the docs
// with no markup ansible-core 2.14 would print raw.
func TestStubsCarryTheDocs(t *testing.T) {
	for _, e := range Registry() {
		b, err := Stub(e)
		require.NoError(t, err)
		s := string(b)
		assert.Contains(t, s, "DOCUMENTATION = r'''\nmodule: "+e.Name+"\n")
		assert.Contains(t, s, "\nRETURN = r'''\n")
		assert.NotRegexp(t, `\b(O|V|RV|E)\(`, s, e.Name)
	}
}
