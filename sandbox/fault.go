package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultKind names what a fault does.
type FaultKind string

// The faults the sandbox can inject. See docs/sandbox.md for each one's
// effect per partner.
const (
	// FaultStatus answers Status in the partner's own error shape, before
	// the request is validated.
	FaultStatus FaultKind = "status"
	// FaultLatency waits Delay before answering normally.
	FaultLatency FaultKind = "latency"
	// FaultStall holds the request without answering until the client gives
	// up, or for Delay when set.
	FaultStall FaultKind = "stall"
	// FaultEmptyBody accepts the message and answers the success status
	// with an empty body (and, for SendGrid, no X-Message-Id).
	FaultEmptyBody FaultKind = "empty_body"
	// FaultGarbageBody accepts the message and answers the success status
	// with bytes that are not the documented shape.
	FaultGarbageBody FaultKind = "garbage_body"
	// FaultHTMLBody accepts the message and answers the success status
	// with an HTML page.
	FaultHTMLBody FaultKind = "html_body"
	// FaultGateway502 answers a gateway's HTML 502 page, as nginx does.
	FaultGateway502 FaultKind = "gateway_502"
	// FaultDropConnection reads the request, accepts the message, then
	// closes the connection without an answer: the outcome is unknown.
	FaultDropConnection FaultKind = "drop_connection"
	// FaultAcceptThenFail accepts the message; the later event says Fate
	// (dropped, bounced or deferred) instead of delivered.
	FaultAcceptThenFail FaultKind = "accept_then_fail"
	// FaultNeverConfirm accepts the message and never sends an event.
	FaultNeverConfirm FaultKind = "never_confirm"
	// FaultDuplicateWebhooks delivers every event webhook Copies times.
	FaultDuplicateWebhooks FaultKind = "duplicate_webhooks"
	// FaultRejectMetadata rejects, with the partner's validation error, a
	// message whose metadata has Key (with Value, when set) — a value the
	// partner accepted a moment before: the incident herald exists for.
	FaultRejectMetadata FaultKind = "reject_metadata"
	// FaultSlackErrorBody answers a valid Slack webhook request 200 with a
	// body that is not "ok" — Text, or "invalid_blocks" by default — and
	// posts nothing: the failure hidden behind a success status that a
	// client reading only the status misses. It applies to Slack only.
	FaultSlackErrorBody FaultKind = "slack_200_error"
)

var faultKinds = []FaultKind{FaultStatus, FaultLatency, FaultStall, FaultEmptyBody, FaultGarbageBody,
	FaultHTMLBody, FaultGateway502, FaultDropConnection, FaultAcceptThenFail, FaultNeverConfirm,
	FaultDuplicateWebhooks, FaultRejectMetadata, FaultSlackErrorBody}

// Duration is a time.Duration that reads and writes JSON as "1.5s".
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string ("250ms") or a number of
// milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var ms float64
		if err := json.Unmarshal(b, &ms); err != nil {
			return errors.New(`want a duration such as "250ms" or a number of milliseconds`)
		}
		*d = Duration(ms * float64(time.Millisecond))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Fault is one scripted misbehaviour. Faults apply in the order they were
// added; several can apply to one request (latency and then a status, say).
type Fault struct {
	// ID is assigned by the sandbox when the fault is added.
	ID string `json:"id"`
	// Partner limits the fault to one partner. Empty means every partner.
	Partner Partner   `json:"partner,omitempty"`
	Kind    FaultKind `json:"kind"`
	// Status is the HTTP status for FaultStatus (an SMTP reply code on the
	// SMTP partner, where an HTTP status is mapped to 421/451/550).
	Status int `json:"status,omitempty"`
	// Probability is the chance, in (0,1], that the fault applies to a
	// request. Defaults to 1.
	Probability float64 `json:"probability,omitempty"`
	// Delay is the wait for FaultLatency and the cap for FaultStall.
	Delay Duration `json:"delay,omitempty"`
	// Fate is the later event for FaultAcceptThenFail: dropped, bounced
	// or deferred. Defaults to bounced.
	Fate Fate `json:"fate,omitempty"`
	// Key and Value select metadata for FaultRejectMetadata; an empty
	// Value matches any value of Key.
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
	// Text is the body FaultSlackErrorBody answers. Defaults to
	// "invalid_blocks".
	Text string `json:"text,omitempty"`
	// Copies is how many times each webhook goes out for
	// FaultDuplicateWebhooks. Defaults to 2.
	Copies int `json:"copies,omitempty"`
	// Times is how many requests the fault applies to before it removes
	// itself. Zero means until removed.
	Times int `json:"times,omitempty"`
	// Remaining counts what is left of Times; set by the sandbox.
	Remaining int `json:"remaining,omitempty"`
}

func (f *Fault) validate() error {
	if f.Partner != "" {
		if _, err := ParsePartner(string(f.Partner)); err != nil {
			return err
		}
	}
	known := false
	for _, k := range faultKinds {
		known = known || k == f.Kind
	}
	if !known {
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	if f.Probability < 0 || f.Probability > 1 {
		return fmt.Errorf("probability %v is outside (0,1]", f.Probability)
	}
	if f.Times < 0 || f.Copies < 0 || f.Delay < 0 {
		return errors.New("times, copies and delay must not be negative")
	}
	switch f.Kind {
	case FaultStatus:
		if f.Status < 400 || f.Status > 599 {
			return fmt.Errorf("status fault needs a status from 400 to 599, got %d", f.Status)
		}
	case FaultLatency:
		if f.Delay == 0 {
			return errors.New("latency fault needs a delay")
		}
	case FaultAcceptThenFail:
		switch f.Fate {
		case "", FateDropped, FateBounced, FateDeferred:
		default:
			return fmt.Errorf("accept_then_fail fate must be dropped, bounced or deferred, got %q", f.Fate)
		}
	case FaultRejectMetadata:
		if f.Key == "" {
			return errors.New("reject_metadata fault needs a key")
		}
	case FaultSlackErrorBody:
		if f.Partner != "" && f.Partner != Slack {
			return fmt.Errorf("slack_200_error fault applies to slack only, not %s", f.Partner)
		}
		if f.Text == "ok" {
			return errors.New(`slack_200_error text must not be "ok"`)
		}
	}
	return nil
}

// ParseFault reads a fault from its flag form: a kind followed by
// comma-separated settings, e.g.
//
//	status=503,partner=sendgrid,probability=0.5
//	kind=latency,delay=2s
//	kind=reject_metadata,partner=sendgrid,key=team,value=a b
//	slack_200_error,text=invalid_blocks
//
// The first item may be a bare kind ("never_confirm,partner=ses").
func ParseFault(spec string) (Fault, error) {
	var f Fault
	for i, item := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok {
			if i == 0 {
				f.Kind = FaultKind(k)
				continue
			}
			return Fault{}, fmt.Errorf("fault %q: %q is not key=value", spec, item)
		}
		var err error
		switch k {
		case "kind":
			f.Kind = FaultKind(v)
		case "partner":
			f.Partner = Partner(v)
		case "status":
			f.Status, err = strconv.Atoi(v)
			if f.Kind == "" {
				f.Kind = FaultStatus
			}
		case "probability", "p":
			f.Probability, err = strconv.ParseFloat(v, 64)
		case "delay":
			var d time.Duration
			d, err = time.ParseDuration(v)
			f.Delay = Duration(d)
		case "fate":
			f.Fate = Fate(v)
		case "key":
			f.Key = v
		case "value":
			f.Value = v
		case "text":
			f.Text = v
		case "copies":
			f.Copies, err = strconv.Atoi(v)
		case "times":
			f.Times, err = strconv.Atoi(v)
		default:
			return Fault{}, fmt.Errorf("fault %q: unknown setting %q", spec, k)
		}
		if err != nil {
			return Fault{}, fmt.Errorf("fault %q: %s: %w", spec, k, err)
		}
	}
	if err := f.validate(); err != nil {
		return Fault{}, fmt.Errorf("fault %q: %w", spec, err)
	}
	return f, nil
}

// faultSet holds the installed faults.
type faultSet struct {
	mu     sync.Mutex
	seq    int
	faults []*Fault
}

func (fs *faultSet) add(f Fault) Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.seq++
	f.ID = strconv.Itoa(fs.seq)
	if f.Probability == 0 {
		f.Probability = 1
	}
	f.Remaining = f.Times
	fs.faults = append(fs.faults, &f)
	return f
}

func (fs *faultSet) list() []Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]Fault, 0, len(fs.faults))
	for _, f := range fs.faults {
		out = append(out, *f)
	}
	return out
}

func (fs *faultSet) remove(id string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.faults {
		if f.ID == id {
			fs.faults = append(fs.faults[:i], fs.faults[i+1:]...)
			return true
		}
	}
	return false
}

func (fs *faultSet) clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.faults = nil
}

// applied is the set of faults that fired for one request.
type applied struct {
	faults []Fault
}

// has returns the first fired fault of kind k.
func (a *applied) has(k FaultKind) (Fault, bool) {
	if a == nil {
		return Fault{}, false
	}
	for _, f := range a.faults {
		if f.Kind == k {
			return f, true
		}
	}
	return Fault{}, false
}

// roll decides which faults fire for one request to partner p. A fault
// that fires with a Times budget spends one; one that runs out is removed.
// Reject-metadata faults are only collected here; whether they fire depends
// on the message, see rejectsMetadata.
func (fs *faultSet) roll(p Partner, random func() float64) *applied {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	a := &applied{}
	keep := fs.faults[:0]
	for _, f := range fs.faults {
		fires := (f.Partner == "" || f.Partner == p) && (f.Probability >= 1 || random() < f.Probability)
		if fires {
			a.faults = append(a.faults, *f)
			if f.Times > 0 && f.Kind != FaultRejectMetadata {
				f.Remaining--
			}
		}
		if f.Times == 0 || f.Remaining > 0 {
			keep = append(keep, f)
		}
	}
	fs.faults = keep
	return a
}

// rejectsMetadata returns the metadata key and value a fired
// reject_metadata fault refuses in md, if any.
func (a *applied) rejectsMetadata(md map[string]string) (key, value string, ok bool) {
	if a == nil {
		return "", "", false
	}
	for _, f := range a.faults {
		if f.Kind != FaultRejectMetadata {
			continue
		}
		if v, found := md[f.Key]; found && (f.Value == "" || v == f.Value) {
			return f.Key, v, true
		}
	}
	return "", "", false
}
