package sandbox

// Slack incoming webhooks, as documented at
// https://api.slack.com/messaging/webhooks (sending messages, and the
// "Handling errors" table) and https://api.slack.com/apis/rate-limits
// (one message per second per webhook, 429 with Retry-After).

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

type slackAPI struct{ s *Server }

func (s *Server) slackRoutes(mux *http.ServeMux) {
	api := slackAPI{s}
	mux.Handle("POST /services/{team}/{hook}/{token}", s.receive(api, api.handle))
}

// SlackMessage is a Slack incoming-webhook payload as the sandbox parsed it.
type SlackMessage struct {
	Text string `json:"text,omitempty"`
	// Blocks and Attachments are kept as sent; each block was checked to
	// be an object with a "type".
	Blocks      []json.RawMessage `json:"blocks,omitempty"`
	Attachments []json.RawMessage `json:"attachments,omitempty"`
	Username    string            `json:"username,omitempty"`
	IconEmoji   string            `json:"icon_emoji,omitempty"`
	IconURL     string            `json:"icon_url,omitempty"`
	Channel     string            `json:"channel,omitempty"`
}

// Slack's documented limits: 50 blocks in a message, 100 attachments.
const (
	slackMaxBlocks      = 50
	slackMaxAttachments = 100
)

// slackText is Slack's answer: a status and a plain-text word.
func slackText(status int, body string) response {
	return response{status: status, header: contentType("text/plain; charset=utf-8"), body: []byte(body)}
}

func (slackAPI) partner() Partner { return Slack }

func (slackAPI) statusError(status int) response {
	switch status {
	case http.StatusBadRequest:
		return slackText(status, "invalid_payload")
	case http.StatusForbidden:
		return slackText(status, "invalid_token")
	case http.StatusNotFound:
		return slackText(status, "no_service")
	case http.StatusGone:
		return slackText(status, "channel_is_archived")
	case http.StatusRequestEntityTooLarge:
		return slackText(status, "request_too_large")
	case http.StatusInternalServerError:
		return slackText(status, "rollup_error")
	}
	return slackText(status, strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_"))
}

// throttled is Slack's 429: the body rate_limited and Retry-After in whole
// seconds.
func (api slackAPI) throttled(v verdict) response {
	resp := slackText(http.StatusTooManyRequests, "rate_limited")
	wait := max(1, int(math.Ceil(v.reset.Sub(api.s.clock.Now()).Seconds())))
	resp.header.Set("Retry-After", strconv.Itoa(wait))
	return resp
}

func (slackAPI) successStatus() int { return http.StatusOK }

// tokenKnown reports whether token names an existing webhook.
func (api slackAPI) tokenKnown(token string) bool {
	known := api.s.cfg.Credentials.SlackTokens
	if len(known) == 0 {
		return token != "" && !strings.HasPrefix(token, "bad")
	}
	for _, k := range known {
		if subtle.ConstantTimeCompare([]byte(k), []byte(token)) == 1 {
			return true
		}
	}
	return false
}

// handle answers POST /services/{T}/{B}/{token}. The checks run in the
// order Slack's answers imply: the workspace, the token, the rate limit of
// the webhook, the payload, then the channel.
func (api slackAPI) handle(w http.ResponseWriter, r *http.Request, n note) {
	s := api.s
	team, hook, token := r.PathValue("team"), r.PathValue("hook"), r.PathValue("token")
	body, fx, ok := s.begin(w, r, api)
	if !ok {
		return
	}
	// By the sandbox's convention a workspace id starting with T404 does
	// not exist and a webhook id starting with B410 posts to an archived
	// channel.
	if strings.HasPrefix(team, "T404") {
		s.write(w, Slack, slackText(http.StatusNotFound, "no_service"))
		return
	}
	if !api.tokenKnown(token) {
		s.write(w, Slack, slackText(http.StatusForbidden, "invalid_token"))
		return
	}
	if !s.limit(w, api, team+"/"+hook) {
		return
	}
	msg, code := parseSlackPayload(r.Header.Get("Content-Type"), body)
	if msg != nil {
		n.set(func(n *Notification) { n.Slack = msg })
	}
	if code != "" {
		s.write(w, Slack, slackText(http.StatusBadRequest, code))
		return
	}
	if strings.HasPrefix(hook, "B410") {
		s.write(w, Slack, slackText(http.StatusGone, "channel_is_archived"))
		return
	}
	if f, ok := fx.has(FaultSlackErrorBody); ok {
		text := f.Text
		if text == "" {
			text = "invalid_blocks"
		}
		s.write(w, Slack, slackText(http.StatusOK, text))
		return
	}
	n.set(func(n *Notification) { n.Accepted = true })
	s.metrics.accepted.WithLabelValues(string(Slack)).Inc()
	s.finish(w, api, fx, slackText(http.StatusOK, "ok"))
}

// parseSlackPayload reads an incoming-webhook body: JSON, or the same JSON
// in the payload field of a form, as Slack also accepts. It returns the
// message when the body is a JSON object of the right shape, and the error
// Slack answers, or "" when the message can be posted:
//
//   - invalid_payload: not JSON, not an object, a field of the wrong type,
//     or none of text, blocks and attachments given;
//   - no_text: text given but blank, with no blocks and no attachment
//     carrying text;
//   - invalid_blocks: blocks not an array of objects each with a "type", or
//     more than 50 of them;
//   - too_many_attachments: more than 100 attachments.
func parseSlackPayload(contentType string, body []byte) (*SlackMessage, string) {
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil || !form.Has("payload") {
			return nil, "invalid_payload"
		}
		body = []byte(form.Get("payload"))
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, "invalid_payload"
	}
	m := &SlackMessage{}
	for key, dst := range map[string]*string{"text": &m.Text, "username": &m.Username,
		"icon_emoji": &m.IconEmoji, "icon_url": &m.IconURL, "channel": &m.Channel} {
		if raw, ok := obj[key]; ok && json.Unmarshal(raw, dst) != nil {
			return nil, "invalid_payload"
		}
	}
	var blocks, attachments []json.RawMessage
	hasBlocks, hasAttachments := isSet(obj["blocks"]), isSet(obj["attachments"])
	if hasAttachments && json.Unmarshal(obj["attachments"], &attachments) != nil {
		return nil, "invalid_payload"
	}
	m.Attachments = attachments
	if hasBlocks && json.Unmarshal(obj["blocks"], &blocks) != nil {
		return m, "invalid_blocks"
	}
	m.Blocks = blocks
	if !isSet(obj["text"]) && !hasBlocks && !hasAttachments {
		return m, "invalid_payload"
	}
	if len(blocks) > slackMaxBlocks {
		return m, "invalid_blocks"
	}
	for _, b := range blocks {
		var block struct {
			Type *string `json:"type"`
		}
		if json.Unmarshal(b, &block) != nil || !isObject(b) || block.Type == nil || *block.Type == "" {
			return m, "invalid_blocks"
		}
	}
	if len(attachments) > slackMaxAttachments {
		return m, "too_many_attachments"
	}
	attachmentText := false
	for _, a := range attachments {
		var att struct {
			Text, Fallback, Pretext string
			Blocks                  []json.RawMessage
		}
		if !isObject(a) || json.Unmarshal(a, &att) != nil {
			return m, "invalid_payload"
		}
		attachmentText = attachmentText || strings.TrimSpace(att.Text+att.Fallback+att.Pretext) != "" || len(att.Blocks) > 0
	}
	if strings.TrimSpace(m.Text) == "" && len(blocks) == 0 && !attachmentText {
		return m, "no_text"
	}
	return m, ""
}

// isSet reports whether a JSON member was given and is not null.
func isSet(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && string(raw) != "null"
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}
