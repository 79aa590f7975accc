package sandbox

// ParseSMTPMessageForTest exposes the SMTP message parser to the fuzz test.
func ParseSMTPMessageForTest(raw []byte) (*Message, error) {
	m, err := parseSMTPMessage(raw)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// ParseSlackPayloadForTest exposes the Slack webhook body parser to the
// fuzz test: the message, when the body parsed, and Slack's error or "".
func ParseSlackPayloadForTest(contentType string, body []byte) (*SlackMessage, string) {
	return parseSlackPayload(contentType, body)
}

// ParsePagerDutyEventForTest exposes the Events API v2 parser to the fuzz
// test: the event, when the body parsed, and every problem found.
func ParsePagerDutyEventForTest(body []byte) (*PagerDutyEvent, []string) {
	return parsePagerDutyEvent(body)
}
