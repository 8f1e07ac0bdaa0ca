package ksc

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValueDecode(t *testing.T) {
	var r Response
	require.NoError(t, json.Unmarshal([]byte(`{
		"PxgRetVal": {"1103": {"type":"params","value":{"1.0.0.0":{"type":"params","value":{
			"BaseRecords": 0, "LastUpdateTime": {"type":"datetime","value":"2019-10-26T23:17:09Z"}}}}}},
		"s": "x", "n": 12, "f": 1.5, "b": true, "nul": null,
		"l": {"type":"long","value":168427781},
		"dt0": {"type":"datetime","value":null}, "dt1": {"type":"datetime","value":""},
		"d": {"type":"date","value":"2016-09-19"},
		"bin": {"type":"binary","value":"3q0="},
		"dbl": {"type":"double","value":2.5},
		"arr": [1, {"type":"params","value":{"Name":"KLHST_WKS_DN","Asc":true}}, null],
		"other": {"type":"unknown","value":1},
		"looksTyped": {"type":"params","value":{"type":"long","value":1}}
	}`), &r))
	ver := r.RetVal().Get("1103").Get("1.0.0.0")
	tm, ok := ver.Get("LastUpdateTime").Time()
	assert.True(t, ok)
	assert.Equal(t, time.Date(2019, 10, 26, 23, 17, 9, 0, time.UTC), tm)
	assert.Equal(t, "x", r["s"].Str())
	n, ok := r["n"].Int()
	assert.True(t, ok)
	assert.Equal(t, int64(12), n)
	assert.Equal(t, Int, r["n"].Kind())
	l, _ := r["l"].Int()
	assert.Equal(t, int64(168427781), l)
	assert.Equal(t, Long, r["l"].Kind())
	assert.Equal(t, Float, r["f"].Kind())
	b, _ := r["b"].Bool()
	assert.True(t, b)
	assert.True(t, r["nul"].IsNull())
	assert.True(t, r["missing"].IsNull())
	for _, k := range []string{"dt0", "dt1"} {
		z, ok := r[k].Time()
		assert.True(t, ok)
		assert.True(t, z.IsZero())
	}
	assert.Equal(t, "2016-09-19", r["d"].Str())
	assert.Equal(t, []byte{0xde, 0xad}, r["bin"].Bytes())
	assert.Equal(t, "2.5", r["dbl"].String())
	arr := r["arr"].Array()
	require.Len(t, arr, 3)
	assert.Equal(t, "KLHST_WKS_DN", arr[1].Get("Name").Str())
	assert.True(t, arr[2].IsNull())
	assert.Equal(t, ParamsKind, r["other"].Kind(), "an unknown type tag is plain params")
	assert.Equal(t, "long", r["looksTyped"].Get("type").Str(), "params content is never unwrapped again")

	for _, bad := range []string{`{"type":"long","value":"x"}`, `{"type":"datetime","value":"yesterday"}`,
		`{"type":"binary","value":"!!"}`, `{"type":"params","value":[1]}`, `{`} {
		var v Value
		assert.Error(t, json.Unmarshal([]byte(bad), &v), bad)
	}
}

func TestValueEncode(t *testing.T) {
	b, err := json.Marshal(map[string]any{
		"l": LongValue(5), "t": DateTimeValue(time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))),
		"z": DateTimeValue(time.Time{}), "arr": []any{NestedParams(map[string]any{"Name": "n", "Asc": true})},
	})
	require.NoError(t, err)
	assert.JSONEq(t, `{"l":{"type":"long","value":5},"t":{"type":"datetime","value":"2026-01-02T02:04:05Z"},
		"z":{"type":"datetime","value":null},"arr":[{"type":"params","value":{"Name":"n","Asc":true}}]}`, string(b))

	in := `{"type":"params","value":{"a":{"type":"long","value":7},"b":[{"type":"params","value":{"c":"d"}}],
		"t":{"type":"datetime","value":"2026-01-02T02:04:05Z"},"bin":{"type":"binary","value":"3q0="},"n":1,"s":"x","nul":null}}`
	var v Value
	require.NoError(t, json.Unmarshal([]byte(in), &v))
	out, err := json.Marshal(v)
	require.NoError(t, err)
	assert.JSONEq(t, in, string(out), "round trip keeps the wire form")
}

func FuzzValue(f *testing.F) {
	for _, s := range []string{`null`, `{"type":"long","value":1}`, `{"type":"params","value":{"a":[1,{"type":"datetime","value":"2020-01-01T00:00:00Z"}]}}`,
		`[[[[{"type":"binary","value":"AA=="}]]]]`, `{"type":"params","value":null}`, `1e400`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v Value
		if json.Unmarshal(data, &v) != nil {
			return
		}
		_ = v.String()
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-encode %q: %v", data, err)
		}
		var again Value
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("decode own output %s: %v", out, err)
		}
	})
}

// decodeResponse, the one-pass decoder of call answers, reads what
// json.Unmarshal into a Response reads, and refuses what it refuses.
func TestDecodeResponseAsUnmarshal(t *testing.T) {
	for _, body := range []string{
		`{"PxgRetVal": {"type":"params","value":{"KLCSP_ITERATOR_ARRAY":[{"type":"params","value":{"KLHST_WKS_DN":"vm-1",` +
			`"KLHST_WKS_STATUS_ID":{"type":"long","value":3},"KLHST_WKS_LAST_VISIBLE":{"type":"datetime","value":"2026-11-30T08:00:00Z"}}}]}},` +
			` "s": "x", "n": 12, "f": 1.5, "b": true, "nul": null, "arr": [1, null, {"type":"binary","value":"3q0="}],` +
			` "looksTyped": {"type":"params","value":{"type":"long","value":1}}}`,
		`{}`, `null`, ` {"a": 1} `,
		`{"a": 1} x`, `[1]`, `{"a": {"type":"long","value":"x"}}`, `{"a": {"type":"datetime","value":"yesterday"}}`, `{"a": `,
	} {
		var want Response
		wantErr := json.Unmarshal([]byte(body), &want)
		got, err := decodeResponse([]byte(body))
		if wantErr != nil {
			assert.Error(t, err, body)
			continue
		}
		require.NoError(t, err, body)
		assert.Equal(t, want, got, body)
	}
}
