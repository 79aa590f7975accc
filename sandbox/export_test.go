package sandbox

// ParseSMTPMessageForTest exposes the SMTP message parser to the fuzz test.
func ParseSMTPMessageForTest(raw []byte) (*Message, error) {
	m, err := parseSMTPMessage(raw)
	if err != nil {
		return nil, err
	}
	return m, nil
}
