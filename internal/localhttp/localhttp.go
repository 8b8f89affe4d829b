// Package localhttp makes the HTTP clients of the programs' local APIs (one
// that dials a unix socket, and one that calls a handler in this process,
// for CLI verbs run while no daemon serves the data directory) and the lean
// HTTP/1.x server the agent's local API runs on. It holds no API of its own.
package localhttp

import (
	"errors"
	"net/http"
	"net/http/httptest"
)

// maxIdleConns is how many idle connections a client keeps: a POS and the
// UI may call concurrently.
const maxIdleConns = 16

// Unix returns a client whose every request goes to the unix socket at path.
func Unix(path string) *http.Client {
	return &http.Client{Transport: &unixTransport{path: path}}
}

// InProcess returns a client that calls h directly: the same requests,
// encodings and errors as over a socket, without one.
func InProcess(h http.Handler) *http.Client {
	return &http.Client{Transport: handlerTransport{h}}
}

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (resp *http.Response, err error) {
	rec := httptest.NewRecorder()
	// A handler that aborts its response (http.ErrAbortHandler, as a server
	// would cut the connection) fails the call instead of the caller.
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			resp, err = nil, errAborted
		}
	}()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// errAborted is a response its handler aborted part way.
var errAborted = errors.New("the response was cut short")
