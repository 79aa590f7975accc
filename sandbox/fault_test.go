package sandbox_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/sandbox"
)

func TestParseFault(t *testing.T) {
	t.Parallel()
	for spec, want := range map[string]sandbox.Fault{
		"status=503": {Kind: sandbox.FaultStatus, Status: 503},
		"status=429,partner=sendgrid,probability=0.5": {Kind: sandbox.FaultStatus, Status: 429, Partner: sandbox.SendGrid, Probability: 0.5},
		"latency,delay=250ms,times=3":                 {Kind: sandbox.FaultLatency, Delay: sandbox.Duration(250 * time.Millisecond), Times: 3},
		"kind=accept_then_fail,fate=dropped":          {Kind: sandbox.FaultAcceptThenFail, Fate: sandbox.FateDropped},
		"never_confirm,partner=ses":                   {Kind: sandbox.FaultNeverConfirm, Partner: sandbox.SES},
		"duplicate_webhooks,copies=3,p=1":             {Kind: sandbox.FaultDuplicateWebhooks, Copies: 3, Probability: 1},
		"reject_metadata,key=team,value=a b":          {Kind: sandbox.FaultRejectMetadata, Key: "team", Value: "a b"},
	} {
		got, err := sandbox.ParseFault(spec)
		require.NoError(t, err, spec)
		require.Equal(t, want, got, spec)
	}
	for spec, msg := range map[string]string{
		"":                                  `unknown fault kind ""`,
		"status=200":                        "status from 400 to 599",
		"status=abc":                        "status",
		"latency":                           "needs a delay",
		"latency,delay=-1s":                 "must not be negative",
		"stall,p=2":                         "outside (0,1]",
		"accept_then_fail,fate=delivered":   "fate must be dropped, bounced or deferred",
		"reject_metadata":                   "needs a key",
		"never_confirm,partner=sparkpost":   `unknown partner "sparkpost"`,
		"never_confirm,colour=blue":         `unknown setting "colour"`,
		"never_confirm,oops":                `"oops" is not key=value`,
		"kind=status,status=503,times=x":    "times",
		"kind=status,status=503,copies=-1":  "must not be negative",
		"kind=status,status=503,delay=soon": "delay",
	} {
		_, err := sandbox.ParseFault(spec)
		require.ErrorContains(t, err, msg, spec)
	}
}

// FuzzParseFault: a fault spec comes from flags and the environment; any
// input either parses into a fault the sandbox accepts, or is an error.
func FuzzParseFault(f *testing.F) {
	for _, seed := range []string{"status=503", "latency,delay=1s", "reject_metadata,key=k,value=v,times=2",
		"kind=accept_then_fail,fate=bounced,partner=mailgun", "status=429,p=0.25", ",,=", "status=5e2"} {
		f.Add(seed)
	}
	sb, err := sandbox.New(sandbox.Config{})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, spec string) {
		fault, err := sandbox.ParseFault(spec)
		if err != nil {
			return
		}
		if _, err := sb.AddFault(fault); err != nil {
			t.Fatalf("ParseFault(%q) accepted a fault AddFault refuses: %v", spec, err)
		}
	})
}
