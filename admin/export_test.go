package admin

// The API's bodies, for the external tests to decode answers into: a field the server adds,
// renames or drops is one the tests see, which a copy of the struct would miss.
type (
	StatsBody     = statsBody
	ChannelBody   = channelBody
	CloseResponse = closeResponse
	ErrorBody     = errorBody
)

// Routes are the patterns the server routes, with their methods (nil: any).
func (s *Server) Routes() map[string][]string { return s.routes().routes }
