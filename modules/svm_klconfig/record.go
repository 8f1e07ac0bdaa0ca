package svmklconfig

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// Record is what svm_klconfig applied to one SVM for the settings klconfig cannot read back. It
// lives on the controller, one file per SVM (address, port and host key fingerprint), so that a
// redeployed SVM behind the same address starts with no record.
type Record struct {
	Host     string                 `json:"host"`
	Port     int                    `json:"port"`
	HostKey  string                 `json:"host_key"` // SHA256 fingerprint
	Salt     string                 `json:"salt"`     // base64, per SVM, for password digests
	Settings map[string]RecordEntry `json:"settings"`
	// ImagePasswordReplacedAt is when the image's klconfig password was replaced by the
	// operator's (the fact only).
	ImagePasswordReplacedAt string `json:"image_password_replaced_at,omitempty"`
}

// RecordEntry is one applied setting. Value is kept for the diff and only for settings that are
// not secret.
type RecordEntry struct {
	Digest    string `json:"digest"`
	Value     string `json:"value,omitempty"`
	AppliedAt string `json:"applied_at"`
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// recordFile names the record of host:port with host key fingerprint fp.
func recordFile(dir, host string, port int, fp string) string {
	sum := sha256.Sum256([]byte(fp))
	return filepath.Join(dir, unsafeName.ReplaceAllString(host, "_")+"_"+strconv.Itoa(port)+"_"+hex.EncodeToString(sum[:8])+".json")
}

// loadRecord reads the record, or returns a new empty one (with a fresh salt) when there is none.
func loadRecord(dir, host string, port int, fp string) (Record, error) {
	path := recordFile(dir, host, port, fp)
	rec := Record{Host: host, Port: port, HostKey: fp, Settings: map[string]RecordEntry{}}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		salt := make([]byte, 16)
		_, _ = rand.Read(salt) // crypto/rand.Read never fails on supported platforms
		rec.Salt = base64.StdEncoding.EncodeToString(salt)
		return rec, nil
	case err != nil:
		return rec, fmt.Errorf("read record %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("read record %s: %w (delete it to start over: the next run applies every setting again)", path, err)
	}
	if rec.Settings == nil {
		rec.Settings = map[string]RecordEntry{}
	}
	if rec.Salt == "" {
		rec.Salt = base64.StdEncoding.EncodeToString([]byte(fp))
	}
	return rec, nil
}

// save writes the record atomically, readable by the owner only.
func (r Record) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write record in %s: %w", dir, err)
	}
	path := recordFile(dir, r.Host, r.Port, r.HostKey)
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write record %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write record %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write record %s: %w", path, err)
	}
	return nil
}

// set records that setting now holds value (digest computed by the caller).
func (r *Record) set(setting, digest, value string) {
	r.Settings[setting] = RecordEntry{Digest: digest, Value: value, AppliedAt: time.Now().UTC().Format(time.RFC3339)}
}

// digest is the record's digest of a non-secret value.
func digest(value string) string {
	sum := sha256.Sum256([]byte(value))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pbkdf2Iterations makes a stolen record expensive to brute-force while costing a run only a few
// milliseconds per password.
const pbkdf2Iterations = 100_000

// secretDigest is the digest of a password: PBKDF2-HMAC-SHA-256 salted per SVM and per account,
// so equal passwords on two SVMs (or two accounts) give unrelated digests.
func secretDigest(salt, account, secret string) string {
	key, err := pbkdf2.Key(sha256.New, secret, []byte(salt+"/"+account), pbkdf2Iterations, 32)
	if err != nil {
		// Only for parameters outside FIPS limits, which these are not.
		return "pbkdf2-sha256:invalid"
	}
	return "pbkdf2-sha256:" + hex.EncodeToString(key)
}
