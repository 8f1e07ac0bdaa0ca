package klconfig

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name   string
		output string
		want   Result
		err    string
	}{
		{"value", "1.0.0\nKLCONFIG OK\n", Result{Lines: []string{"1.0.0"}, OK: true}, ""},
		{"usage", "Usage: connectorlang lang\nKLCONFIG FAILED\n", Result{Usage: "Usage: connectorlang lang"}, ""},
		{"error then ok is a warning", "Current product version: 5.1.5.57\nERROR: rollback: There is no last installed patch.\nKLCONFIG OK\n",
			Result{Lines: []string{"Current product version: 5.1.5.57"}, Errors: []string{"rollback: There is no last installed patch."}, OK: true}, ""},
		{"coded error", "ERROR:0130 Invalid password.\nKLCONFIG FAILED", Result{Errors: []string{"0130 Invalid password."}}, ""},
		{"empty value line kept", "\nKLCONFIG OK\n", Result{Lines: []string{""}, OK: true}, ""},
		{"crlf and trailing blanks", "a b\r\nKLCONFIG OK\r\n\r\n  \n", Result{Lines: []string{"a b"}, OK: true}, ""},
		{"last line wins", "KLCONFIG OK\nERROR: late\nKLCONFIG FAILED\n", Result{Lines: []string{"KLCONFIG OK"}, Errors: []string{"late"}}, ""},
		{"no marker", "1.0.0\n", Result{}, `parse klconfig output: last line "1.0.0": no KLCONFIG marker`},
		{"marker not last", "KLCONFIG OK\nsomething\n", Result{}, `parse klconfig output: last line "something": no KLCONFIG marker`},
		{"empty", "", Result{}, "parse klconfig output: empty: no KLCONFIG marker"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.output)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				require.ErrorIs(t, err, ErrNoMarker)
				return
			}
			require.NoError(t, err)
			tc.want.Output = tc.output
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseTest(t *testing.T) {
	// The vendor's example, byte for byte.
	res, err := Parse("uid=0(root) gid=0(root) groups=0(root)\nTue Aug 14 14:19:35 UTC 2018\n" +
		"Kaspersky Security for Virtualization 5.0 Light Agent 5.1.5.57\n" +
		"14:19:35 up 4 min,0 users,load average: 0.04, 0.18, 0.11\nDONE –-\nKLCONFIG OK\n")
	require.NoError(t, err)
	got, err := ParseTest(res)
	require.NoError(t, err)
	assert.Equal(t, TestInfo{
		User:    "root",
		Date:    time.Date(2018, 8, 14, 14, 19, 35, 0, time.UTC),
		Product: "Kaspersky Security for Virtualization 5.0 Light Agent 5.1.5.57",
		Version: "5.1.5.57",
		Uptime:  "14:19:35 up 4 min,0 users,load average: 0.04, 0.18, 0.11",
	}, TestInfo{got.User, got.Date.UTC(), got.Product, got.Version, got.Uptime})

	_, err = ParseTest(Result{Lines: []string{"nothing useful"}, OK: true})
	assert.EqualError(t, err, "parse klconfig test output: no product line")
}

func TestParseDNSShow(t *testing.T) {
	cases := []struct {
		out  string
		want []string
	}{
		{"192.0.2.45 198.51.100.7\nKLCONFIG OK\n", []string{"192.0.2.45", "198.51.100.7"}},
		{"\nKLCONFIG OK\n", nil},
	}
	for _, tc := range cases {
		res, err := Parse(tc.out)
		require.NoError(t, err)
		assert.Equal(t, tc.want, ParseDNSShow(res))
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.0.0\nKLCONFIG OK\n", "Usage: x\nKLCONFIG FAILED", "ERROR:\n\n", "\r\n", "KLCONFIG OK"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		res, err := Parse(out)
		if err != nil {
			return
		}
		// Accepted output ends with a marker that agrees with OK.
		fields := strings.Fields(out)
		require.GreaterOrEqual(t, len(fields), 2)
		assert.Equal(t, res.OK, fields[len(fields)-1] == "OK")
		_, _ = ParseTest(res)
		_ = ParseDNSShow(res)
	})
}
