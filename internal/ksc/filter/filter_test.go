package filter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBuild(t *testing.T) {
	for _, tc := range []struct {
		got  Expr
		want string
	}{
		{Eq("KLHST_WKS_DN", `a "b"`), `(KLHST_WKS_DN = "a ""b""")`},
		{Eq("KLHST_WKS_DN", `svm-*?[x]`), `(KLHST_WKS_DN = "svm-[*][?][[]x]")`},
		{Like("KLHST_WKS_DN", `svm-*`), `(KLHST_WKS_DN = "svm-*")`},
		{Ne("KLHST_WKS_DN", `"`), `(KLHST_WKS_DN <> """")`},
		{EqInt("KLHST_WKS_GROUPID", -7), `(KLHST_WKS_GROUPID = -7)`},
		{NeInt("KLHST_WKS_GROUPID_GP", 4), `(KLHST_WKS_GROUPID_GP <> 4)`},
		{BitSet("KLHST_WKS_STATUS", 1), `(KLHST_WKS_STATUS & 1 <> 0)`},
		{BitClear("KLHST_WKS_STATUS", 4), `(KLHST_WKS_STATUS & 4 = 0)`},
		{Before("KLHST_WKS_LAST_VISIBLE", time.Date(2005, 4, 27, 23, 59, 1, 0, time.UTC)), `(KLHST_WKS_LAST_VISIBLE < T"2005-04-27 23:59:01")`},
		{OlderThan("KLHST_WKS_LAST_VISIBLE", 24*time.Hour), `(KLHST_WKS_LAST_VISIBLE < CURTIME(-86400))`},
		{And(EqInt("A", 1), All, EqInt("B", 2)), `(&(A = 1)(B = 2))`},
		{And(EqInt("A", 1)), `(A = 1)`},
		{And(), ``},
		{Or(EqInt("A", 1), Not(EqInt("B", 2))), `(|(A = 1)(!(B = 2)))`},
		{Not(All), `(!)`},
	} {
		assert.Equal(t, tc.want, tc.got.String())
	}
	assert.Panics(t, func() { Eq(`A) (B`, "x") }, "attribute names come from code")
}
