package vsphere

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Limits on what an image may contain. They keep a hostile or corrupt
// image from making the importer allocate or loop without bound.
const (
	maxDescriptorBytes = 16 << 20 // an OVF descriptor is a few KiB in practice
	maxManifestBytes   = 1 << 20
	maxTarEntries      = 256
	indexWindow        = 64 << 10 // bytes fetched per ranged read while indexing
)

// blob is random access to an image file: a local file or an HTTP(S) URL
// read with Range requests, so one member of an OVA is fetched without
// downloading the archive.
type blob interface {
	Size() int64
	// ReadRange streams n bytes from off. The caller closes it.
	ReadRange(ctx context.Context, off, n int64) (io.ReadCloser, error)
	Close() error
}

// readerAtBlob serves a blob from an io.ReaderAt (a local file, or bytes in
// fuzz tests).
type readerAtBlob struct {
	r    io.ReaderAt
	size int64
	c    io.Closer
}

func (b *readerAtBlob) Size() int64 { return b.size }

func (b *readerAtBlob) ReadRange(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n < 0 || off+n > b.size {
		return nil, fmt.Errorf("range %d+%d is outside the file (%d bytes)", off, n, b.size)
	}
	return io.NopCloser(ctxReader{ctx, io.NewSectionReader(b.r, off, n)}), nil
}

// ctxReader stops a read loop once ctx ends: a local file on a stalled
// network mount must not outlive the module's deadline between reads.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

func (b *readerAtBlob) Close() error {
	if b.c == nil {
		return nil
	}
	return b.c.Close()
}

// httpBlob reads a remote file with HTTP Range requests.
type httpBlob struct {
	u    *url.URL
	c    *http.Client
	size int64
}

func (b *httpBlob) Size() int64  { return b.size }
func (b *httpBlob) Close() error { return nil }

func (b *httpBlob) ReadRange(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if n == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	res, total, err := b.get(ctx, off, off+n-1)
	if err != nil {
		return nil, err
	}
	if total != b.size {
		_ = res.Body.Close()
		return nil, fmt.Errorf("get %s: size changed from %d to %d bytes while reading", b.u.Redacted(), b.size, total)
	}
	if res.ContentLength >= 0 && res.ContentLength != n {
		_ = res.Body.Close()
		return nil, fmt.Errorf("get %s: asked for %d bytes at %d, got %d", b.u.Redacted(), n, off, res.ContentLength)
	}
	return res.Body, nil
}

// get issues one ranged GET and returns the response and the total size
// from Content-Range.
func (b *httpBlob) get(ctx context.Context, first, last int64) (*http.Response, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.u.String(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", b.u.Redacted(), err)
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", first, last))
	res, err := b.c.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", b.u.Redacted(), redactURLError(err))
	}
	if res.StatusCode != http.StatusPartialContent {
		_ = res.Body.Close()
		if res.StatusCode == http.StatusNotFound {
			return nil, 0, fmt.Errorf("get %s: %s: %w", b.u.Redacted(), res.Status, fs.ErrNotExist)
		}
		if res.StatusCode == http.StatusOK {
			return nil, 0, fmt.Errorf("get %s: the server ignores HTTP Range requests; serve the image from a server that supports them or download it first", b.u.Redacted())
		}
		return nil, 0, fmt.Errorf("get %s: %s", b.u.Redacted(), res.Status)
	}
	cr := res.Header.Get("Content-Range") // bytes first-last/total
	slash := strings.LastIndexByte(cr, '/')
	total, err := strconv.ParseInt(cr[slash+1:], 10, 64)
	if slash < 0 || err != nil || total < 0 {
		_ = res.Body.Close()
		return nil, 0, fmt.Errorf("get %s: bad Content-Range %q", b.u.Redacted(), cr)
	}
	return res, total, nil
}

// redactURLError keeps credentials in a source URL out of messages.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return &url.Error{Op: ue.Op, URL: u.Redacted(), Err: ue.Err}
		}
		return &url.Error{Op: ue.Op, URL: "(unparsable url)", Err: ue.Err}
	}
	return err
}

// isURL reports whether source names an http(s) URL.
func isURL(source string) bool {
	return strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://")
}

// openBlob opens a local path or URL. hc is used for URLs.
func openBlob(ctx context.Context, source string, hc *http.Client) (blob, error) {
	if isURL(source) {
		u, err := url.Parse(source)
		if err != nil {
			// url.Parse's error quotes the whole URL, password included.
			return nil, errors.New("the image URL cannot be parsed (check its escapes: a '%' in a password must be written %25)")
		}
		b := &httpBlob{u: u, c: hc}
		res, total, err := b.get(ctx, 0, 0)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		b.size = total
		return b, nil
	}
	return openLocal(os.OpenFile, source)
}

// openLocal opens a local image file. O_NONBLOCK makes opening a FIFO or
// a device return at once instead of waiting for a writer (a FIFO given as
// the image hung the module past its deadline and SIGTERM), and anything
// that is not a regular file is refused before a byte is read.
func openLocal(open func(string, int, os.FileMode) (*os.File, error), name string) (blob, error) {
	f, err := open(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open: %w", err)
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("open %s: not a regular file (%s)", name, fileKind(st.Mode()))
	}
	return &readerAtBlob{r: f, size: st.Size(), c: f}, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return m.Type().String()
}

// member is one file of an image: a tar entry of an OVA or a file next to
// an OVF.
type member struct {
	name string
	off  int64
	size int64
	b    blob
}

func (m member) open(ctx context.Context) (io.ReadCloser, error) {
	return m.b.ReadRange(ctx, m.off, m.size)
}

// seeker presents a blob as an io.ReadSeeker for archive/tar, which seeks
// over member data: indexing an OVA costs one small ranged read per member
// whatever the disk size.
type seeker struct {
	ctx context.Context
	b   blob
	pos int64
	cur io.ReadCloser
	end int64 // end of the window cur reads
}

func (s *seeker) Read(p []byte) (int, error) {
	if s.pos >= s.b.Size() {
		return 0, io.EOF
	}
	if s.cur == nil || s.pos >= s.end {
		s.closeWindow()
		n := min(int64(indexWindow), s.b.Size()-s.pos)
		rc, err := s.b.ReadRange(s.ctx, s.pos, n)
		if err != nil {
			return 0, err
		}
		s.cur, s.end = rc, s.pos+n
	}
	if max := s.end - s.pos; int64(len(p)) > max {
		p = p[:max]
	}
	n, err := s.cur.Read(p)
	s.pos += int64(n)
	if err == io.EOF {
		if s.pos < s.end {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}

func (s *seeker) Seek(off int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = off
	case io.SeekCurrent:
		abs = s.pos + off
	case io.SeekEnd:
		abs = s.b.Size() + off
	default:
		return 0, errors.New("seek: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	if abs != s.pos {
		s.closeWindow()
		s.pos = abs
	}
	return abs, nil
}

func (s *seeker) closeWindow() {
	if s.cur != nil {
		_ = s.cur.Close()
		s.cur = nil
	}
}

// indexTar lists the regular files of an OVA with their data offsets,
// reading only tar headers.
func indexTar(ctx context.Context, b blob) (map[string]member, []string, error) {
	s := &seeker{ctx: ctx, b: b}
	defer s.closeWindow()
	tr := tar.NewReader(s)
	members := make(map[string]member)
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read ova: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeReg: // archive/tar reports old-style '\x00' entries as TypeReg
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		default:
			return nil, nil, fmt.Errorf("read ova: entry %q: type %q is not a regular file", h.Name, h.Typeflag)
		}
		name, err := cleanMemberName(h.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("read ova: %w", err)
		}
		if h.Size < 0 || h.Size > b.Size()-s.pos {
			return nil, nil, fmt.Errorf("read ova: entry %q: size %d exceeds the archive", h.Name, h.Size)
		}
		if _, dup := members[name]; dup {
			return nil, nil, fmt.Errorf("read ova: entry %q appears twice", h.Name)
		}
		if len(order) == maxTarEntries {
			return nil, nil, fmt.Errorf("read ova: more than %d entries", maxTarEntries)
		}
		members[name] = member{name: name, off: s.pos, size: h.Size, b: b}
		order = append(order, name)
	}
	return members, order, nil
}

// cleanMemberName accepts a relative, slash-separated name that stays
// inside the image ("disk.vmdk", "./disk.vmdk", "disks/a.vmdk") and
// rejects absolute paths, "..", backslashes and control characters.
func cleanMemberName(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("file name %q rejected: %s", name, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case strings.ContainsAny(name, "\\\x00"):
		return bad("backslash or NUL")
	case path.IsAbs(name) || filepath.IsAbs(name) || filepath.VolumeName(name) != "":
		return bad("absolute path")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return bad("control character")
		}
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return bad("path traversal")
		}
	}
	clean := path.Clean(name)
	if clean == "." || strings.HasPrefix(clean, "../") {
		return bad("path traversal")
	}
	return clean, nil
}
