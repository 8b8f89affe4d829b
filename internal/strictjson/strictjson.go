// Package strictjson decodes a JSON request body as exactly as it was
// written: encoding/json takes the last of two equal keys, matches keys
// without regard to case and turns invalid UTF-8 into U+FFFD, so that
// {"amount":"5","amount":"500000"} or two different refs that fold to the
// same string would mean something other than what a reviewer reads. Decode
// refuses all three, and unknown fields and trailing data, with one line.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a body.
const maxDepth = 32

// Decode decodes body into v (a pointer) strictly.
func Decode(body []byte, v any) error {
	if !utf8.Valid(body) {
		return errors.New("not valid UTF-8")
	}
	names, exact := fieldNames(reflect.TypeOf(v))
	if err := check(body, names, exact); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// check walks the tokens of body: no key twice in one object, every key one
// of names exactly (when exact), no string holding U+FFFD (what an invalid
// escape such as a lone surrogate decodes to).
func check(body []byte, names map[string]bool, exact bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object  bool
		keys    map[string]bool
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) == maxDepth {
					return fmt.Errorf("nested more than %d deep", maxDepth)
				}
				if top != nil && top.object {
					top.wantKey = true
				}
				stack = append(stack, &frame{object: d == '{', keys: map[string]bool{}, wantKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		s, isString := tok.(string)
		if isString && strings.ContainsRune(s, utf8.RuneError) {
			return errors.New("a string holds U+FFFD or an invalid escape")
		}
		if top == nil || !top.object {
			continue
		}
		if !top.wantKey {
			top.wantKey = true
			continue
		}
		top.wantKey = false
		if top.keys[s] {
			return fmt.Errorf("field %q twice", s)
		}
		top.keys[s] = true
		if exact && !names[s] {
			return fmt.Errorf("unknown field %q (field names are matched exactly)", s)
		}
	}
}

var namesCache sync.Map // reflect.Type → namesOf

type namesOf struct {
	names map[string]bool
	exact bool
}

// fieldNames returns the JSON names of every struct field reachable from t,
// and whether keys can be checked against them (not when a map, whose keys
// are data, or an interface is reachable).
func fieldNames(t reflect.Type) (map[string]bool, bool) {
	if n, ok := namesCache.Load(t); ok {
		return n.(namesOf).names, n.(namesOf).exact
	}
	names, exact := map[string]bool{}, true
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if seen[t] {
			return
		}
		seen[t] = true
		switch t.Kind() {
		case reflect.Map, reflect.Interface:
			exact = false
		case reflect.Struct:
			if t.Implements(unmarshaler) || reflect.PointerTo(t).Implements(unmarshaler) {
				return
			}
			for i := range t.NumField() {
				f := t.Field(i)
				if !f.IsExported() {
					continue
				}
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name == "-" {
					continue
				}
				if f.Anonymous && name == "" {
					walk(f.Type)
					continue
				}
				if name == "" {
					name = f.Name
				}
				names[name] = true
				walk(f.Type)
			}
		}
	}
	walk(t)
	namesCache.Store(t, namesOf{names, exact})
	return names, exact
}

var unmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
