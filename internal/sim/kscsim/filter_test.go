package kscsim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testSchema adds a binary attribute to the host schema: no documented
// host attribute is binary, but the grammar has binary literals.
var testSchema = func() schema {
	sc := schema{"BIN": kBinary}
	for k, v := range hostSchema {
		sc[k] = v
	}
	return sc
}()

func TestFilterGrammar(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rec := record{
		"KLHST_WKS_HOSTNAME":        "8910f900-3807-4b97-8a97-d49e73ec5ab1",
		"KLHST_WKS_DN":              `SVM "old" 01`,
		"KLHST_WKS_FQDN":            "svm-01.lab.local",
		"KLHST_WKS_GROUPID":         int64(7),
		"KLHST_WKS_STATUS":          int64(0x05),
		"KLHST_WKS_LAST_VISIBLE":    now.Add(-2 * time.Hour),
		"KLHST_WKS_IP_LONG":         long(0x0A0A0105),
		"KLHST_WKS_GROUPID_GP":      multi{int64(7), int64(2), int64(1)},
		"KLHST_WKS_PRODUCT_NAME":    multi{"1103", "KSVLA"},
		"KLHST_WKS_FROM_UNASSIGNED": false,
		"BIN":                       binary{0xde, 0xad},
	}
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{"", true},
		{"   ", true},
		{`(KLHST_WKS_GROUPID = 7)`, true},
		{`(KLHST_WKS_GROUPID=8)`, false},
		{`KLHST_WKS_HOSTNAME = "8910f900-3807-4b97-8a97-d49e73ec5ab1"`, true}, // bare item (XSOAR)
		{`(KLHST_WKS_GROUPID <> 7)`, false},
		{`(KLHST_WKS_GROUPID < 8)`, true},
		{`(KLHST_WKS_GROUPID > 7)`, false},
		{`(KLHST_WKS_GROUPID > -1)`, true},
		{`(KLHST_WKS_DN = "SVM ""old"" 01")`, true}, // "" escapes a quote
		{`(KLHST_WKS_DN = "svm ""OLD"" 01")`, true}, // case-insensitive (lab assumption)
		{`(KLHST_WKS_DN = "SVM ""old"" 0?")`, true},
		{`(KLHST_WKS_DN = "SVM*")`, true},
		{`(KLHST_WKS_DN = "*01")`, true},
		{`(KLHST_WKS_DN = "*02")`, false},
		{`(KLHST_WKS_FQDN = "svm-0[0-1].*")`, true},
		{`(KLHST_WKS_FQDN = "svm-0[^0-1].*")`, false},
		{`(KLHST_WKS_FQDN = "svm-0[abc1].lab.local")`, true},
		{`(KLHST_WKS_FQDN <> "svm-*")`, true}, // wildcards only with =
		{`(KLHST_WKS_FQDN > "svm-00")`, true},
		{`(KLHST_WKS_FQDN < "svm-00")`, false},
		{`(&(KLHST_WKS_GROUPID = 7)(KLHST_WKS_FQDN = "svm*"))`, true},
		{`(&(KLHST_WKS_GROUPID = 7)(KLHST_WKS_FQDN = "x*"))`, false},
		{`(|(KLHST_WKS_GROUPID = 1)(KLHST_WKS_FQDN = "svm*"))`, true},
		{`(|(KLHST_WKS_GROUPID = 1)(KLHST_WKS_GROUPID = 2))`, false},
		{`(!(KLHST_WKS_GROUPID = 1))`, true},
		{` ( & ( KLHST_WKS_GROUPID = 7 ) ( ! ( KLHST_WKS_STATUS & 2 <> 0 ) ) ) `, true},
		{`(KLHST_WKS_STATUS&1<>0)`, true},
		{`(KLHST_WKS_STATUS & 4 <> 0)`, true},
		{`(KLHST_WKS_STATUS & 2 = 0)`, true},
		{`(KLHST_WKS_STATUS & 0x8 <> 0)`, false},
		{`(KLHST_WKS_LAST_VISIBLE > CURTIME(-86400))`, true},
		{`(KLHST_WKS_LAST_VISIBLE < CURTIME(-3600))`, true},
		{`(KLHST_WKS_LAST_VISIBLE < CURTIME( -10800 ))`, false},
		{`(KLHST_WKS_LAST_VISIBLE > CURTIME(+60))`, false},
		{`(KLHST_WKS_LAST_VISIBLE = T"2026-03-01 10:00:00")`, true},
		{`(KLHST_WKS_LAST_VISIBLE < T"2026-03-01 09:59:59")`, false},
		{`(KLHST_WKS_IP_LONG = 168427781)`, true},
		{`(BIN = 0xdead)`, true},
		{`(BIN = 0xDEAE)`, false},
		{`(BIN < 0xdeae)`, true},
		{`(KLHST_WKS_GROUPID_GP = 2)`, true},   // any ancestor
		{`(KLHST_WKS_GROUPID_GP <> 2)`, false}, // excludes the subtree
		{`(KLHST_WKS_GROUPID_GP <> 4)`, true},
		{`(KLHST_WKS_PRODUCT_NAME = "ksvla")`, true},
		{`(KLHST_WKS_PRODUCT_NAME = "KES")`, false},
		{`(KLHST_WKS_FROM_UNASSIGNED = 0)`, true},
		{`(&(KLHST_WKS_FROM_UNASSIGNED=0)(KLHST_WKS_STATUS & 4<>0))`, true},
		{`(KLHST_WKS_DNSNAME = "*")`, false}, // no value: never matches
		{`(KLHST_WKS_DNSNAME <> "x")`, false},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			n, err := parseFilter(tc.filter, testSchema)
			require.NoError(t, err)
			assert.Equal(t, tc.want, n.match(rec, now))
		})
	}
}

func TestFilterMalformed(t *testing.T) {
	for _, f := range []string{
		`(`,
		`()`,
		`(KLHST_WKS_DN)`,
		`(KLHST_WKS_DN = )`,
		`(KLHST_WKS_DN = "unterminated)`,
		`(KLHST_WKS_DN = "a") trailing`,
		`(KLHST_WKS_DN == "a")`,
		`(KLHST_WKS_DN <= "a")`,
		`(KLHST_WKS_DN = 'a')`,
		`(KLHST_WKS_DN = 5)`,        // kind mismatch
		`(KLHST_WKS_GROUPID = "7")`, // kind mismatch
		`(KLHST_WKS_DN & 1 <> 0)`,   // bit test on a string
		`(KLHST_WKS_STATUS & <> 0)`,
		`(NOPE = 1)`, // unknown attribute
		`(&)`,
		`(|)`,
		`(!)`,
		`(!(KLHST_WKS_GROUPID = 1)(KLHST_WKS_GROUPID = 2))`,
		`(&(KLHST_WKS_GROUPID = 1)`,
		`(KLHST_WKS_LAST_VISIBLE < CURTIME(x))`,
		`(KLHST_WKS_LAST_VISIBLE < CURTIME(-1)`,
		`(KLHST_WKS_LAST_VISIBLE < T"yesterday")`,
		`(KLHST_WKS_DN = "[a-")`,
		`(KLHST_WKS_DN = "[]")`,
		`(KLHST_WKS_DN = "[z-a]")`,
		`(BIN = 0xabc)`,
		`(BIN = 0x)`,
		`(KLHST_WKS_GROUPID = 99999999999999999999)`,
		`KLHST_WKS_GROUPID`,
	} {
		t.Run(f, func(t *testing.T) {
			_, err := parseFilter(f, testSchema)
			assert.Error(t, err)
		})
	}
	deep := ""
	for i := 0; i < 100; i++ {
		deep += "(!"
	}
	_, err := parseFilter(deep+"(KLHST_WKS_GROUPID = 1)", testSchema)
	assert.ErrorContains(t, err, "nested deeper")
}

func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		"", `(KLHST_WKS_DN = "a*b?[c-d][^e]")`, `(&(KLHST_WKS_STATUS & 4 <> 0)(!(KLHST_WKS_GROUPID_GP = 3)))`,
		`(|(KLHST_WKS_LAST_VISIBLE < CURTIME(-86400))(KLHST_WKS_CREATED > T"2005-04-27 23:59:01"))`,
		`(BIN = 0x00ff)`, `KLHST_WKS_DN = "x ""y"""`,
	} {
		f.Add(s)
	}
	rec := record{"KLHST_WKS_DN": "abcde", "KLHST_WKS_STATUS": int64(5), "KLHST_WKS_GROUPID_GP": multi{int64(3)},
		"KLHST_WKS_LAST_VISIBLE": time.Unix(0, 0), "BIN": binary{1}}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseFilter(s, testSchema)
		if err != nil {
			return
		}
		n.match(rec, time.Unix(1e9, 0)) // must not panic
	})
}
