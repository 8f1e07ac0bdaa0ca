package labtest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// ServeImage serves the image at path over HTTP on loopback, with the
// Range support vsphere.ReadDescriptor needs, and calls onRead (which
// may sleep to slow the transfer down) with the size of every chunk read
// for a response. It returns the image's URL.
func ServeImage(t testing.TB, path string, onRead func(r *http.Request, n int)) string {
	t.Helper()
	if onRead == nil {
		onRead = func(*http.Request, int) {}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "svm.ova", time.Time{}, readSeekHook{f: f, onRead: func(n int) { onRead(r, n) }})
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/svm.ova"
}

// readSeekHook has only Read and Seek: with the file's WriteTo promoted,
// the server would sendfile the body past onRead.
type readSeekHook struct {
	f      *os.File
	onRead func(int)
}

func (h readSeekHook) Read(p []byte) (int, error) {
	n, err := h.f.Read(p)
	h.onRead(n)
	return n, err
}

func (h readSeekHook) Seek(offset int64, whence int) (int64, error) { return h.f.Seek(offset, whence) }
