package sandbox

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fate is what became, or will become, of an accepted message.
type Fate string

// The fates a message can have. Accepted is the state between acceptance and
// the final event; Test means the partner's test mode accepted it and will
// never deliver it; Unconfirmed means it was accepted and no event will ever
// say what happened (the never_confirm fault).
const (
	FateAccepted    Fate = "accepted"
	FateDelivered   Fate = "delivered"
	FateBounced     Fate = "bounced"
	FateDropped     Fate = "dropped"
	FateDeferred    Fate = "deferred"
	FateComplained  Fate = "complained"
	FateTest        Fate = "test"
	FateUnconfirmed Fate = "unconfirmed"
)

// ParseFate returns the final fate named s: delivered, bounced, dropped,
// deferred or complained.
func ParseFate(s string) (Fate, bool) {
	switch f := Fate(s); f {
	case FateDelivered, FateBounced, FateDropped, FateDeferred, FateComplained:
		return f, true
	}
	return "", false
}

// Message is one accepted message as the partner stored it.
type Message struct {
	// ID is the sandbox's own id for the message.
	ID string `json:"id"`
	// Partner is the partner that accepted it.
	Partner Partner `json:"partner"`
	// MessageID is the partner's message id exactly as its send response
	// wrote it (Mailgun's with angle brackets, SMTP's queue id).
	MessageID  string    `json:"message_id"`
	ReceivedAt time.Time `json:"received_at"`
	From       string    `json:"from"`
	To         []string  `json:"to"`
	Cc         []string  `json:"cc,omitempty"`
	Bcc        []string  `json:"bcc,omitempty"`
	Subject    string    `json:"subject"`
	Text       string    `json:"text,omitempty"`
	HTML       string    `json:"html,omitempty"`
	// Metadata is the message's metadata as the partner stored it:
	// SendGrid custom_args, Postmark Metadata, Mailgun v: variables and
	// X-Mailgun-Variables, SES EmailTags, SMTP X-* metadata headers.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Tags are SendGrid categories, the Postmark Tag, Mailgun o:tag.
	Tags    []string          `json:"tags,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// TestMode is set when the partner's test switch was on.
	TestMode bool `json:"test_mode"`
	// Fate is what became of it, or will.
	Fate Fate `json:"fate"`
	// Events are the events the partner emitted for it, in order.
	Events []Event `json:"events"`
}

// Event is one thing that happened to an accepted message.
type Event struct {
	// ID is the event's own id (sg_event_id, Mailgun's id, …).
	ID string `json:"id"`
	// Type is the partner-neutral fate this event reports.
	Type      Fate      `json:"type"`
	Recipient string    `json:"recipient"`
	At        time.Time `json:"at"`
	// Reason is the bounce or drop reason the partner gives.
	Reason string `json:"reason,omitempty"`
}

// recipients returns every address the message was sent to.
func (m *Message) recipients() []string {
	return slices.Concat(m.To, m.Cc, m.Bcc)
}

// MessageFilter selects messages from the mailbox. Empty fields match all.
type MessageFilter struct {
	Partner Partner
	// To matches any recipient, case-insensitively.
	To string
	// Subject matches a substring of the subject, case-insensitively.
	Subject string
	// Text matches a substring of the subject, text or HTML body.
	Text string
	// MessageID matches the partner message id, with or without Mailgun's
	// angle brackets.
	MessageID string
	// MetadataKey and MetadataValue match a metadata entry; an empty value
	// matches any value of the key.
	MetadataKey   string
	MetadataValue string
	Fate          Fate
}

func (f MessageFilter) match(m *Message) bool {
	if f.Partner != "" && m.Partner != f.Partner {
		return false
	}
	if f.To != "" && !slices.ContainsFunc(m.recipients(), func(r string) bool { return strings.EqualFold(bareAddress(r), f.To) }) {
		return false
	}
	if f.Subject != "" && !containsFold(m.Subject, f.Subject) {
		return false
	}
	if f.Text != "" && !containsFold(m.Subject, f.Text) && !containsFold(m.Text, f.Text) && !containsFold(m.HTML, f.Text) {
		return false
	}
	if f.MessageID != "" && strings.Trim(m.MessageID, "<>") != strings.Trim(f.MessageID, "<>") {
		return false
	}
	if f.MetadataKey != "" {
		v, ok := m.Metadata[f.MetadataKey]
		if !ok || (f.MetadataValue != "" && v != f.MetadataValue) {
			return false
		}
	}
	if f.Fate != "" && m.Fate != f.Fate {
		return false
	}
	return true
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// mailbox keeps accepted messages, oldest first, up to a cap, indexed by
// sandbox id and by partner message id (without Mailgun's angle brackets).
type mailbox struct {
	mu    sync.Mutex
	max   int
	msgs  []*Message
	seq   int
	byID  map[string]*Message
	byMID map[string]*Message
}

func newMailbox(max int) *mailbox {
	return &mailbox{max: max, byID: map[string]*Message{}, byMID: map[string]*Message{}}
}

// add stores m. Past the cap the oldest tenth is forgotten at once, so the
// mailbox holds at most 10% more than its cap and trimming stays cheap.
func (b *mailbox) add(m *Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	if m.ID == "" {
		m.ID = strconv.Itoa(b.seq)
	}
	b.msgs = append(b.msgs, m)
	b.byID[m.ID] = m
	if mid := strings.Trim(m.MessageID, "<>"); mid != "" {
		if _, taken := b.byMID[mid]; !taken {
			b.byMID[mid] = m // SendGrid shares one id between personalizations: keep the first
		}
	}
	if len(b.msgs) > b.max+b.max/10 {
		drop := len(b.msgs) - b.max
		for _, old := range b.msgs[:drop] {
			delete(b.byID, old.ID)
			if mid := strings.Trim(old.MessageID, "<>"); b.byMID[mid] == old {
				delete(b.byMID, mid)
			}
		}
		b.msgs = slices.Delete(b.msgs, 0, drop)
	}
}

// list returns copies of the matching messages, oldest first.
func (b *mailbox) list(f MessageFilter) []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []Message{}
	for _, m := range b.msgs {
		if f.match(m) {
			out = append(out, m.clone())
		}
	}
	return out
}

// get returns a copy of the message whose sandbox id or partner message id
// is id.
func (b *mailbox) get(id string) (Message, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m := b.find(id); m != nil {
		return m.clone(), true
	}
	return Message{}, false
}

func (b *mailbox) find(id string) *Message {
	if m, ok := b.byID[id]; ok {
		return m
	}
	return b.byMID[strings.Trim(id, "<>")]
}

// update runs f on the stored message with the given id under the lock.
func (b *mailbox) update(id string, f func(*Message)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m := b.find(id); m != nil {
		f(m)
		return true
	}
	return false
}

func (b *mailbox) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = nil
	b.byID = map[string]*Message{}
	b.byMID = map[string]*Message{}
}

func (m *Message) clone() Message {
	c := *m
	c.To = slices.Clone(m.To)
	c.Cc = slices.Clone(m.Cc)
	c.Bcc = slices.Clone(m.Bcc)
	c.Tags = slices.Clone(m.Tags)
	c.Events = slices.Clone(m.Events)
	if m.Metadata != nil {
		c.Metadata = make(map[string]string, len(m.Metadata))
		for k, v := range m.Metadata {
			c.Metadata[k] = v
		}
	}
	if m.Headers != nil {
		c.Headers = make(map[string]string, len(m.Headers))
		for k, v := range m.Headers {
			c.Headers[k] = v
		}
	}
	return c
}
