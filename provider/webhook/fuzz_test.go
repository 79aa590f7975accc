package webhook_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/provider/webhook"
)

// FuzzBody: any payload template either renders valid JSON within the
// size limit or is refused with an error; it never panics or runs away.
func FuzzBody(f *testing.F) {
	f.Add(`{"title": {{toJson .Name}}, "groups": {{toJson .Result.GroupsTriggered}}, "sev": {{toJson .Vars.severity}}}`)
	f.Add(`{{range 100000000}}x{{end}}`)
	f.Add(`{"a": "{{.Alert.Summary}}"}`)
	f.Add(`{{.Nope}}`)
	alert := &herald.Alert{ID: "trg_1", Name: "n", Status: "TRIGGERED", Summary: "Triggered: n",
		ResultGroupsTriggered: []herald.AlertGroup{{Group: map[string]any{"r": "/a"}, Result: 2}}}
	f.Fuzz(func(t *testing.T, tmpl string) {
		p := &herald.WebhookPayloads{PayloadTemplates: map[string]struct {
			Body string `json:"body"`
		}{"trigger": {Body: tmpl}}}
		p.TemplateVariables = append(p.TemplateVariables, struct {
			Name         string `json:"name"`
			DefaultValue string `json:"default_value"`
		}{Name: "severity", DefaultValue: "info"})
		body, err := webhook.Body(alert, herald.DestinationDetails{WebhookPayloads: p}, nil)
		if err != nil {
			return
		}
		require.True(t, json.Valid(body))
		require.LessOrEqual(t, len(body), 1<<20)
	})
}
