package ansible

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type counterOptions struct {
	Name    string `json:"name"`
	Want    int    `json:"want"`
	Sleep   bool   `json:"sleep"`
	Timeout int    `json:"timeout"`
}

type counterPlan struct {
	From, To int
	Applied  bool
}

func (p *counterPlan) Empty() bool               { return p.From == p.To }
func (p *counterPlan) Diff() (before, after any) { return p.From, p.To }
func (p *counterPlan) Report() map[string]any {
	return map[string]any{"value": p.To, "applied": p.Applied}
}

// counter is a typed module over an in-memory value: enough to show the
// runtime decodes once, hands typed values on and reports from the plan.
type counter struct {
	value   *int
	decoded *int
}

func (counter) Doc() Doc { return Doc{} }
func (counter) Spec() Spec {
	return Spec{Options: []Option{{Name: "name", Required: true}, {Name: "want", Type: TypeInt},
		{Name: "sleep", Type: TypeBool, Default: false}, TimeoutOption(30)}}
}

func (m counter) Observe(ctx context.Context, c *Call[counterOptions]) (int, error) {
	*m.decoded++
	if c.Options.Sleep {
		<-ctx.Done()
		return 0, fmt.Errorf("read %s: %w", c.Options.Name, ctx.Err())
	}
	return *m.value, nil
}

func (counter) Plan(c *Call[counterOptions], observed int) (*counterPlan, error) {
	return &counterPlan{From: observed, To: c.Options.Want}, nil
}

func (m counter) Apply(_ context.Context, c *Call[counterOptions], p *counterPlan) error {
	*m.value = p.To
	p.Applied = true
	c.Msg = fmt.Sprintf("%s set", c.Options.Name)
	return nil
}

func TestTypedModule(t *testing.T) {
	value, decoded := 1, 0
	m := Typed[counterOptions, int, *counterPlan](counter{value: &value, decoded: &decoded})
	run := func(args map[string]any, check bool) Result {
		return Execute(context.Background(), "counter", m, Invocation{Args: args, CheckMode: check, DiffMode: true}, func(string) (string, bool) { return "", false })
	}

	res := run(map[string]any{"name": "c", "want": 3}, true)
	assert.Equal(t, true, res["changed"])
	assert.Equal(t, map[string]any{"value": int64(3), "applied": false}, map[string]any{"value": res["value"], "applied": res["applied"]})
	assert.Equal(t, 1, value, "check mode changes nothing")

	res = run(map[string]any{"name": "c", "want": 3}, false)
	assert.Equal(t, true, res["changed"])
	assert.Equal(t, true, res["applied"])
	assert.Equal(t, "c set", res.Msg())
	assert.Equal(t, map[string]any{"before": int64(1), "after": int64(3)}, res["diff"])
	assert.Equal(t, 3, value)

	res = run(map[string]any{"name": "c", "want": 3}, false)
	assert.Equal(t, false, res["changed"])
	assert.Equal(t, 3, decoded, "one decode per run")

	typ, ok := OptionsType(m)
	require.True(t, ok)
	assert.Empty(t, CheckOptions(m.Spec(), typ))
}

func TestTimeoutIsTheRuntimes(t *testing.T) {
	value, decoded := 0, 0
	m := Typed[counterOptions, int, *counterPlan](counter{value: &value, decoded: &decoded})
	start := time.Now()
	res := Execute(context.Background(), "counter", m, Invocation{Args: map[string]any{"name": "c", "sleep": true, "timeout": 1}}, func(string) (string, bool) { return "", false })
	assert.True(t, res.Failed())
	assert.Equal(t, "read c: context deadline exceeded (the module ran out of time: option timeout is 1 s)", res.Msg())
	assert.Less(t, time.Since(start), 20*time.Second)
}
