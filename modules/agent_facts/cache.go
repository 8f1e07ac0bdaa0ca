package agentfacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ksvla/lightagent/internal/fleet"
)

// CacheOptions are the cache option's sub-options.
type CacheOptions struct {
	Path   string `json:"path"`
	MaxAge int    `json:"max_age"`
}

// cacheFile is what the cache holds: one read of the whole scope, the
// options it was read with (as a key: a caller reading another scope or
// other products does not take it) and when.
type cacheFile struct {
	Key      string         `json:"key"`
	ReadAt   time.Time      `json:"read_at"`
	Snapshot fleet.Snapshot `json:"snapshot"`
}

// cacheKey names what a read depends on: where it read and what it looked
// for, never a secret. esxi_hostnames is not in it (the cache holds the
// whole scope), nor the rules Build applies per caller.
func cacheKey(o Options) string {
	b, _ := json.Marshal([]any{o.Hostname, o.Port, o.VCenterOptions.Username, o.URL, o.KSCOptions.Username, o.VServer, // plain values encode
		o.Datacenter, o.Cluster, o.PSProducts, o.LAProducts, o.SVMNamePattern, o.Probe})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// cacheResult says where a caller's facts came from.
type cacheResult struct {
	Hit bool    `json:"hit"`
	Age float64 `json:"age"` // seconds since the read
}

// readThrough returns the cached snapshot when it was read with the same
// key less than max_age ago, else reads (read) and stores it. An exclusive
// lock on path.lock makes the callers of one interval queue behind the
// first, which reads while the others wait and then take its file.
func readThrough(ctx context.Context, c CacheOptions, key string, read func() (fleet.Snapshot, error)) (fleet.Snapshot, cacheResult, error) {
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
		return fleet.Snapshot{}, cacheResult{}, fmt.Errorf("cache.path: cannot create the directory of %s: %w", c.Path, err)
	}
	unlock, err := lockFile(ctx, c.Path+".lock")
	if err != nil {
		return fleet.Snapshot{}, cacheResult{}, err
	}
	defer unlock()
	if raw, err := os.ReadFile(c.Path); err == nil {
		var f cacheFile
		// An unreadable or foreign file is a miss: it is rewritten.
		if json.Unmarshal(raw, &f) == nil && f.Key == key {
			if age := time.Since(f.ReadAt); age >= 0 && age < time.Duration(c.MaxAge)*time.Second {
				return f.Snapshot, cacheResult{Hit: true, Age: age.Seconds()}, nil
			}
		}
	}
	snap, err := read()
	if err != nil {
		return fleet.Snapshot{}, cacheResult{}, err
	}
	if err := writeAtomic(c.Path, cacheFile{Key: key, ReadAt: time.Now(), Snapshot: snap}); err != nil {
		return fleet.Snapshot{}, cacheResult{}, err
	}
	return snap, cacheResult{}, nil
}

// lockFile takes an exclusive flock on path, polling so that the module's
// timeout still applies while another caller reads.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache.path: open the lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) // closing releases it anyway
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("cache.path: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("cache.path: waiting for another caller's read: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// writeAtomic replaces path with v's JSON through a rename, so a reader
// without the lock never sees half a file. Only the owner may read it.
func writeAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cache.path: encode: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cache.path: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename; only a failed write leaves it
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("cache.path: write: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cache.path: write: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cache.path: %w", err)
	}
	return nil
}
