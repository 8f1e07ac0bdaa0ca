package vsphere

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

func TestFinders(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	ctx := context.Background()

	dc, err := s.Datacenter(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, "/DC0", dc.InventoryPath)

	// Two folders named "svms" make the bare name ambiguous.
	root, err := s.Folder(ctx, dc, "")
	require.NoError(t, err)
	for _, p := range []string{"a", "b"} {
		f, err := root.CreateFolder(ctx, p)
		require.NoError(t, err)
		_, err = f.CreateFolder(ctx, "svms")
		require.NoError(t, err)
	}
	h0, err := s.Host(ctx, dc, "DC0_C0_H0")
	require.NoError(t, err)
	moref := h0.Reference().String()

	tests := []struct {
		name     string
		find     func() (object.Reference, error)
		wantPath string
		err      string
		notFound bool
	}{
		{name: "host by name", find: func() (object.Reference, error) { return s.Host(ctx, dc, "DC0_C0_H1") }, wantPath: "/DC0/host/DC0_C0/DC0_C0_H1"},
		{name: "host by path", find: func() (object.Reference, error) { return s.Host(ctx, dc, "/DC0/host/DC0_H0/DC0_H0") }, wantPath: "/DC0/host/DC0_H0/DC0_H0"},
		{name: "host by moref", find: func() (object.Reference, error) { return s.Host(ctx, dc, moref) }, wantPath: "/DC0/host/DC0_C0/DC0_C0_H0"},
		{name: "host moref of another type", find: func() (object.Reference, error) { return s.Host(ctx, dc, "Datastore:"+moref[len("HostSystem:"):]) }, notFound: true, err: `host "Datastore:`},
		{name: "host not found", find: func() (object.Reference, error) { return s.Host(ctx, dc, "esx-missing") }, notFound: true,
			err: `host "esx-missing" not found in datacenter /DC0; hosts there: DC0_C0_H0, DC0_C0_H1, DC0_C0_H2, DC0_H0`},
		{name: "host ambiguous", find: func() (object.Reference, error) { return s.Host(ctx, dc, "DC0_C0_H*") },
			err: `3 hosts match "DC0_C0_H*": /DC0/host/DC0_C0/DC0_C0_H0, /DC0/host/DC0_C0/DC0_C0_H1, /DC0/host/DC0_C0/DC0_C0_H2 (unique inventory path required)`},
		{name: "datastore", find: func() (object.Reference, error) { return s.Datastore(ctx, dc, "LocalDS_0") }, wantPath: "/DC0/datastore/LocalDS_0"},
		{name: "datastore not found", find: func() (object.Reference, error) { return s.Datastore(ctx, dc, "nope") }, notFound: true,
			err: `datastore "nope" not found in datacenter /DC0; datastores there: LocalDS_0`},
		{name: "network not found", find: func() (object.Reference, error) { return s.Network(ctx, dc, "VM Netwrk") }, notFound: true,
			err: `network "VM Netwrk" not found in datacenter /DC0; networks there: `},
		{name: "network", find: func() (object.Reference, error) { return s.Network(ctx, dc, "VM Network") }, wantPath: "/DC0/network/VM Network"},
		{name: "folder ambiguous", find: func() (object.Reference, error) { return s.Folder(ctx, dc, "svms") },
			err: `2 folders match "svms": /DC0/vm/a/svms, /DC0/vm/b/svms (unique inventory path required)`},
		{name: "folder by path", find: func() (object.Reference, error) { return s.Folder(ctx, dc, "/DC0/vm/b/svms") }, wantPath: "/DC0/vm/b/svms"},
		{name: "pool by path", find: func() (object.Reference, error) { return s.ResourcePool(ctx, dc, nil, "/DC0/host/DC0_C0/Resources") }, wantPath: "/DC0/host/DC0_C0/Resources"},
		{name: "vm by name", find: func() (object.Reference, error) { return s.VM(ctx, dc, "DC0_H0_VM0") }, wantPath: "/DC0/vm/DC0_H0_VM0"},
		{name: "datacenter not found", find: func() (object.Reference, error) { return s.Datacenter(ctx, "DC9") }, notFound: true, err: `datacenter "DC9" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.find()
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				assert.Equal(t, tt.notFound, errors.Is(err, ErrNotFound))
				return
			}
			require.NoError(t, err)
			p, ok := got.(interface{ GetInventoryPath() string })
			if ok {
				assert.Equal(t, tt.wantPath, p.GetInventoryPath())
			}
		})
	}

	pool, err := s.ResourcePool(ctx, dc, h0, "")
	require.NoError(t, err)
	poolDefault, err := s.ResourcePool(ctx, dc, nil, "/DC0/host/DC0_C0/Resources")
	require.NoError(t, err)
	assert.Equal(t, poolDefault.Reference(), pool.Reference(), "a cluster host's default pool is the cluster's root pool")
}

func TestVMByName(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	ctx := context.Background()
	dc, err := s.Datacenter(ctx, "DC0")
	require.NoError(t, err)

	got, err := s.VMByName(ctx, dc, "DC0_H0_VM*")
	require.NoError(t, err)
	assert.Empty(t, got, "names are compared literally, not as patterns")

	got, err = s.VMByName(ctx, dc, "DC0_H0_VM0")
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "/DC0/vm/DC0_H0_VM0", got[0].InventoryPath)

	// A second VM with the same name in another folder: both are returned.
	root, err := s.Folder(ctx, dc, "")
	require.NoError(t, err)
	f, err := root.CreateFolder(ctx, "other")
	require.NoError(t, err)
	require.NoError(t, runTask(ctx, "clone", "DC0_H0_VM0", func(ctx context.Context) (*object.Task, error) {
		return got[0].Clone(ctx, f, "DC0_H0_VM0", types.VirtualMachineCloneSpec{})
	}))
	got, err = s.VMByName(ctx, dc, "DC0_H0_VM0")
	require.NoError(t, err)
	paths := []string{got[0].InventoryPath, got[1].InventoryPath}
	assert.ElementsMatch(t, []string{"/DC0/vm/DC0_H0_VM0", "/DC0/vm/other/DC0_H0_VM0"}, paths)

	_, err = s.VM(ctx, dc, "DC0_H0_VM0")
	assert.ErrorContains(t, err, `2 vms match "DC0_H0_VM0"`)
}

// Within a session (one module run), a placement object found once is not
// searched for again; VMs always are, since runs create and delete them.
func TestFindersRememberPlacement(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	ctx := context.Background()
	dc, err := s.Datacenter(ctx, "DC0")
	require.NoError(t, err)
	host, err := s.Host(ctx, dc, "DC0_C0_H0")
	require.NoError(t, err)

	tests := []struct {
		name     string
		find     func() (object.Reference, error)
		remember bool
	}{
		{"datacenter", func() (object.Reference, error) { return s.Datacenter(ctx, "DC0") }, true},
		{"host", func() (object.Reference, error) { return s.Host(ctx, dc, "DC0_C0_H0") }, true},
		{"cluster", func() (object.Reference, error) { return s.Cluster(ctx, dc, "DC0_C0") }, true},
		{"datastore", func() (object.Reference, error) { return s.Datastore(ctx, dc, "LocalDS_0") }, true},
		{"network", func() (object.Reference, error) { return s.Network(ctx, dc, "VM Network") }, true},
		{"vm folder", func() (object.Reference, error) { return s.Folder(ctx, dc, "") }, true},
		{"host's pool", func() (object.Reference, error) { return s.ResourcePool(ctx, dc, host, "") }, true},
		{"pool by path", func() (object.Reference, error) { return s.ResourcePool(ctx, dc, nil, "/DC0/host/DC0_C0/Resources") }, true},
		{"vm", func() (object.Reference, error) { return s.VM(ctx, dc, "DC0_H0_VM0") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, err := tt.find()
			require.NoError(t, err)
			before := s.RoundTrips()
			again, err := tt.find()
			require.NoError(t, err)
			assert.Equal(t, first.Reference(), again.Reference())
			if tt.remember {
				assert.Equal(t, before, s.RoundTrips(), "found again without asking vCenter")
			} else {
				assert.Greater(t, s.RoundTrips(), before, "looked up afresh")
			}
		})
	}
	_, err = s.Datastore(ctx, dc, "nope")
	require.Error(t, err)
	before := s.RoundTrips()
	_, err = s.Datastore(ctx, dc, "nope")
	require.Error(t, err)
	assert.Greater(t, s.RoundTrips(), before, "a failed lookup is not remembered")
}

// A not-found error lists at most 10 of the names that exist, sorted, and says how many more.
func TestNotFoundListsCandidates(t *testing.T) {
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("esx-%02d", n-i)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		names []string
		lerr  error
		want  string
	}{
		{"none there", nil, nil, `host "x" not found in datacenter /DC0`},
		{"listing failed", many(3), errors.New("boom"), `host "x" not found in datacenter /DC0`},
		{"three", many(3), nil, `host "x" not found in datacenter /DC0; hosts there: esx-01, esx-02, esx-03`},
		{"ten", many(10), nil, `host "x" not found in datacenter /DC0; hosts there: esx-01, esx-02, esx-03, esx-04, esx-05, esx-06, esx-07, esx-08, esx-09, esx-10`},
		{"thirteen", many(13), nil, `host "x" not found in datacenter /DC0; hosts there: esx-01, esx-02, esx-03, esx-04, esx-05, esx-06, esx-07, esx-08, esx-09, esx-10 (and 3 more)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := withCandidates(&NotFoundError{Kind: "host", Name: "x", In: "datacenter /DC0"}, func() ([]string, error) { return tc.names, tc.lerr })
			assert.EqualError(t, err, tc.want)
			assert.ErrorIs(t, err, ErrNotFound)
		})
	}
	other := errors.New("not a not-found")
	assert.Same(t, other, withCandidates(other, func() ([]string, error) { panic("not listed") }))
}

// Lookups of one key side by side ask vCenter once: the second waits for
// the first's answer. After a failure the waiter looks up itself.
func TestRememberSideBySide(t *testing.T) {
	var l lookups
	var calls atomic.Int32
	release := make(chan struct{})
	find := func() (string, error) {
		calls.Add(1)
		<-release
		return "dc", nil
	}
	var wg sync.WaitGroup
	got := make([]string, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = remember(&l, "datacenter\x00DC1", find)
		}()
	}
	time.Sleep(20 * time.Millisecond) // let them all ask
	close(release)
	wg.Wait()
	assert.Equal(t, int32(1), calls.Load())
	assert.Equal(t, []string{"dc", "dc", "dc", "dc"}, got)

	failed := 0
	_, err := remember(&l, "host\x00h1", func() (string, error) { failed++; return "", errors.New("gone") })
	require.Error(t, err)
	v, err := remember(&l, "host\x00h1", func() (string, error) { return "h1", nil })
	require.NoError(t, err)
	assert.Equal(t, "h1", v)
	assert.Equal(t, 1, failed)
}
