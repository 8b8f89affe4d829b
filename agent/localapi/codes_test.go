package localapi

import (
	"errors"
	"testing"

	"github.com/offline-loyalty/terminal/agent"
)

// TestEveryReasonHasAStatus: each of the agent's refusals answers with a
// status of its own (not a 500 by omission), and a client turns its code
// back into the same refusal.
func TestEveryReasonHasAStatus(t *testing.T) {
	for _, code := range agent.Reasons() {
		if _, ok := statuses[code]; !ok {
			t.Errorf("%s: no HTTP status", code)
		}
		err := agent.ReasonError(code)
		if err == nil || agent.Reason(err) != code {
			t.Errorf("%s: ReasonError gives %v, whose reason is %q", code, err, agent.Reason(err))
		}
		if codeOf(errors.Join(errors.New("context"), err)) != code {
			t.Errorf("%s: lost when wrapped", code)
		}
	}
	for err, code := range map[error]string{errTooLarge: "too_large", errForeign: "forbidden", errMediaType: "unsupported_media_type", errors.New("disk on fire"): "internal"} {
		if got := codeOf(err); got != code {
			t.Errorf("codeOf(%v) = %q, want %q", err, got, code)
		}
	}
}
