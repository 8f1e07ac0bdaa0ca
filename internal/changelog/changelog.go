// Package changelog reads and writes the collection's changelog in the
// antsibull-changelog layout Galaxy collections use (changelogs/config.yaml,
// changelogs/changelog.yaml and one fragment file per change), and renders
// CHANGELOG.rst from it. antsibull-changelog itself is a Python tool from
// PyPI, which this project's machines cannot reach; the files stay in its
// format so a maintainer who has it can use it instead.
package changelog

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the part of changelogs/config.yaml the renderer needs.
type Config struct {
	Title          string     `yaml:"title"`
	Sections       [][]string `yaml:"sections"`
	PreludeName    string     `yaml:"prelude_section_name"`
	PreludeTitle   string     `yaml:"prelude_section_title"`
	TrivialSection string     `yaml:"trivial_section_name"`
	NotesDir       string     `yaml:"notesdir"`
	ChangesFile    string     `yaml:"changes_file"`
}

// Plugin is a module (or other plugin) a release added.
type Plugin struct {
	Description string `yaml:"description"`
	Name        string `yaml:"name"`
	Namespace   string `yaml:"namespace"`
}

// Release is one version of changelog.yaml.
type Release struct {
	Changes     map[string]any `yaml:"changes,omitempty"`
	Modules     []Plugin       `yaml:"modules,omitempty"`
	ReleaseDate string         `yaml:"release_date"`
}

// Changes is changelog.yaml.
type Changes struct {
	Ancestor any                `yaml:"ancestor"`
	Releases map[string]Release `yaml:"releases"`
}

// Log is a changelog directory read from disk.
type Log struct {
	Dir       string
	Config    Config
	Changes   Changes
	Fragments map[string]map[string][]string // file name -> section -> entries
}

// Load reads dir (changelogs/): config, changes and fragments, and
// checks every fragment against the configured sections.
func Load(dir string) (*Log, error) {
	l := &Log{Dir: dir, Fragments: map[string]map[string][]string{}}
	if err := readYAML(filepath.Join(dir, "config.yaml"), &l.Config); err != nil {
		return nil, err
	}
	if l.Config.ChangesFile == "" {
		l.Config.ChangesFile = "changelog.yaml"
	}
	if l.Config.NotesDir == "" {
		l.Config.NotesDir = "fragments"
	}
	if err := readYAML(filepath.Join(dir, l.Config.ChangesFile), &l.Changes); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(dir, l.Config.NotesDir))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		var f map[string]any
		path := filepath.Join(dir, l.Config.NotesDir, e.Name())
		if err := readYAML(path, &f); err != nil {
			return nil, err
		}
		frag, err := l.fragment(e.Name(), f)
		if err != nil {
			return nil, err
		}
		l.Fragments[e.Name()] = frag
	}
	return l, nil
}

func (l *Log) known(section string) bool {
	if section == l.Config.PreludeName || section == l.Config.TrivialSection {
		return true
	}
	for _, s := range l.Config.Sections {
		if len(s) == 2 && s[0] == section {
			return true
		}
	}
	return false
}

// fragment checks one fragment file as antsibull-changelog lint does:
// known sections, each a list of non-empty strings (the prelude a string).
func (l *Log) fragment(name string, f map[string]any) (map[string][]string, error) {
	if !strings.HasSuffix(name, ".yml") && !strings.HasSuffix(name, ".yaml") {
		return nil, fmt.Errorf("fragment %s: name it <topic>.yml", name)
	}
	if len(f) == 0 {
		return nil, fmt.Errorf("fragment %s is empty", name)
	}
	out := map[string][]string{}
	for section, v := range f {
		if !l.known(section) {
			return nil, fmt.Errorf("fragment %s: unknown section %q (config.yaml lists the sections)", name, section)
		}
		if section == l.Config.PreludeName {
			s, ok := v.(string)
			if !ok || strings.TrimSpace(s) == "" {
				return nil, fmt.Errorf("fragment %s: %s must be a non-empty string", name, section)
			}
			out[section] = []string{s}
			continue
		}
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return nil, fmt.Errorf("fragment %s: %s must be a non-empty list of strings", name, section)
		}
		for _, item := range list {
			s, ok := item.(string)
			if !ok || strings.TrimSpace(s) == "" {
				return nil, fmt.Errorf("fragment %s: %s holds %v, not a non-empty string", name, section, item)
			}
			out[section] = append(out[section], strings.TrimSpace(s))
		}
	}
	return out, nil
}

// Release folds every fragment into a new release of changelog.yaml and
// removes the fragments, as `antsibull-changelog release` does.
func (l *Log) Release(version, date string, modules []Plugin) error {
	if _, ok := l.Changes.Releases[version]; ok {
		return fmt.Errorf("release %s is already in %s", version, l.Config.ChangesFile)
	}
	changes := map[string]any{}
	names := make([]string, 0, len(l.Fragments))
	for n := range l.Fragments {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for section, entries := range l.Fragments[n] {
			switch section {
			case l.Config.TrivialSection:
			case l.Config.PreludeName:
				changes[section] = entries[0]
			default:
				prev, _ := changes[section].([]string)
				changes[section] = append(prev, entries...)
			}
		}
	}
	if l.Changes.Releases == nil {
		l.Changes.Releases = map[string]Release{}
	}
	l.Changes.Releases[version] = Release{Changes: changes, Modules: modules, ReleaseDate: date}
	b, err := yaml.Marshal(l.Changes)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.Dir, l.Config.ChangesFile), b, 0o644); err != nil {
		return err
	}
	for _, n := range names {
		if err := os.Remove(filepath.Join(l.Dir, l.Config.NotesDir, n)); err != nil {
			return err
		}
	}
	l.Fragments = map[string]map[string][]string{}
	return nil
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
