package changelog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The repository's changelog loads (every fragment has known sections of
// the right types) and CHANGELOG.rst is what it renders: run
// `make changelog` after a release.
func TestRepositoryChangelog(t *testing.T) {
	root := filepath.Join("..", "..")
	l, err := Load(filepath.Join(root, "changelogs"))
	require.NoError(t, err)
	require.NotEmpty(t, l.Changes.Releases)
	got, err := os.ReadFile(filepath.Join(root, "CHANGELOG.rst"))
	require.NoError(t, err)
	assert.Equal(t, l.Render(), string(got), "CHANGELOG.rst is stale: run `make changelog`")
}

const config = `title: Ksvla.Lightagent
prelude_section_name: release_summary
prelude_section_title: Release Summary
trivial_section_name: trivial
sections:
  - [minor_changes, Minor Changes]
  - [bugfixes, Bugfixes]
`

func writeLog(t *testing.T, fragments map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "fragments"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "changelog.yaml"), []byte("ancestor: null\nreleases:\n  0.1.0:\n    release_date: '2026-11-24'\n    changes:\n      bugfixes: [old fix]\n"), 0o644))
	for name, body := range fragments {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "fragments", name), []byte(body), 0o644))
	}
	return dir
}

func TestFragmentsAreChecked(t *testing.T) {
	tests := map[string]struct {
		name, body string
		err        string
	}{
		"valid":           {"a.yml", "minor_changes:\n  - one\nbugfixes: [two]\n", ""},
		"trivial":         {"a.yml", "trivial: [tests only]\n", ""},
		"unknown section": {"a.yml", "features: [x]\n", `unknown section "features"`},
		"not a list":      {"a.yml", "bugfixes: one fix\n", "must be a non-empty list of strings"},
		"empty list":      {"a.yml", "bugfixes: []\n", "must be a non-empty list of strings"},
		"empty entry":     {"a.yml", "bugfixes: ['']\n", "not a non-empty string"},
		"empty file":      {"a.yml", "{}\n", "is empty"},
		"prelude list":    {"a.yml", "release_summary: [x]\n", "must be a non-empty string"},
		"wrong name":      {"a.txt", "bugfixes: [x]\n", "name it <topic>.yml"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeLog(t, map[string]string{tc.name: tc.body}))
			if tc.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.err)
		})
	}
}

func TestReleaseFoldsFragmentsAndRenders(t *testing.T) {
	dir := writeLog(t, map[string]string{
		"b.yml": "bugfixes: [second fix]\n",
		"a.yml": "minor_changes: [a change]\nbugfixes: [first fix]\nrelease_summary: The summary.\n",
		"c.yml": "trivial: [not shown]\n",
	})
	l, err := Load(dir)
	require.NoError(t, err)
	require.NoError(t, l.Release("0.2.0", "2026-12-01", []Plugin{{Name: "new_module", Description: "Does a thing"}}))
	require.ErrorContains(t, l.Release("0.2.0", "2026-12-02", nil), "already")

	left, err := os.ReadDir(filepath.Join(dir, "fragments"))
	require.NoError(t, err)
	assert.Empty(t, left, "a release consumes its fragments")

	again, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, `==============================
Ksvla.Lightagent Release Notes
==============================

.. contents:: Topics

v0.2.0
======

Release Summary
---------------

The summary.

Minor Changes
-------------

- a change

Bugfixes
--------

- first fix
- second fix

New Modules
-----------

- ksvla.lightagent.new_module - Does a thing

v0.1.0
======

Bugfixes
--------

- old fix
`, again.Render())
}

func TestVersionOrder(t *testing.T) {
	assert.True(t, versionLess("0.9.0", "0.10.0"))
	assert.False(t, versionLess("1.0.0", "0.10.0"))
	assert.False(t, versionLess("1.0.0", "1.0.0"))
}
