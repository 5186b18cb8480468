package settings

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/mcsim/mcsim/shard"
)

// ValidateShards reports a 1009 naming field "shards" when n is not one of
// shard.Counts.
func ValidateShards(n int) *Error {
	if shard.ValidCount(n) {
		return nil
	}
	e := InvalidValue("shards", shard.CountRule, n)
	return &e
}

// ParseShardsRequest validates a POST /v1/account/shards body against the
// service's wa_id and returns the shard count asked for. Two forms are
// accepted:
//
//   - the real API's {"cc": "1", "phone_number": "6315551019", "shards": 2}
//     with optional "pin" and "cert": cc and phone_number together must be
//     waID. pin and cert must be strings if present; mcsim has no two-step
//     PIN and no certificate to compare them with, so their content is not
//     checked;
//   - mcsim's short {"shards": 2} (cc and phone_number both absent), for its
//     own clients.
//
// All or nothing, every problem at once, sorted by field: a body that is not
// a JSON object (1025, the same parser and wording as PATCH
// /v1/settings/application: invalid UTF-8 and lone surrogates included), an
// unknown field (1010), no "shards" or only one of cc and phone_number
// (1008), a bad value or a number that is not this account's (1009). Only an
// integer literal counts as a shard count: 2.0, "2" and 2e0 are refused, as
// PATCH refuses them for integer fields. cc and phone_number are strings, as
// in the real API.
func ParseShardsRequest(body []byte, waID string) (int, Errors) {
	if len(body) > MaxBodyBytes {
		return 0, Errors{TooLarge(MaxBodyBytes)}
	}
	root, perr := parseBody(body)
	if perr != nil {
		return 0, Errors{*perr}
	}
	if root.kind != kindObject {
		return 0, Errors{InvalidRequest(`request body must be a JSON object like {"shards": 2}, got ` + root.describe())}
	}
	var errs []pathError
	fail := func(path string, e Error) { errs = append(errs, pathError{path: path, err: e}) }
	obj := map[string]*node{}
	bad := map[string]bool{} // present, but already refused for its text
	for _, m := range root.members {
		if m.lone != "" {
			fail(m.key, badKey(m.key, m.lone))
			continue
		}
		switch m.key {
		case "shards", "cc", "phone_number", "pin", "cert":
			obj[m.key] = m.val
			if es := unicodeErrors(m.key, m.val); len(es) > 0 {
				fail(m.key, es[0])
				bad[m.key] = true
			}
		default:
			fail(m.key, NotRequired(truncate(m.key, maxGot), `unknown field (the body is {"shards": N}, or the real API's {"cc", "phone_number", "shards", "pin", "cert"})`))
		}
	}
	n := 0
	v, hasShards := obj["shards"]
	switch {
	case !hasShards:
		fail("shards", MissingParameter("shards"))
	case bad["shards"]: // its own error says enough
	case v.kind != kindNumber:
		fail("shards", InvalidValue("shards", shard.CountRule, v))
	default:
		i, isInt, _ := parseIntLiteral(v.num.String())
		if !isInt || i < 1 || i > shard.Buckets || !shard.ValidCount(int(i)) {
			fail("shards", InvalidValue("shards", shard.CountRule, v))
		} else {
			n = int(i)
		}
	}
	cc, hasCC := obj["cc"]
	phone, hasPhone := obj["phone_number"]
	ccOK := hasCC && digits(cc, 1, 3)
	phoneOK := hasPhone && digits(phone, 1, 15)
	if hasCC && !ccOK && !bad["cc"] {
		fail("cc", InvalidValue("cc", `must be the country code as a string of 1 to 3 digits, without "+" (for example "1")`, cc))
	}
	if hasPhone && !phoneOK && !bad["phone_number"] {
		fail("phone_number", InvalidValue("phone_number", `must be the phone number without the country code, as a string of digits (for example "6315551019")`, phone))
	}
	switch {
	case hasCC && !hasPhone:
		fail("phone_number", pairMissing("phone_number", "cc"))
	case hasPhone && !hasCC:
		fail("cc", pairMissing("cc", "phone_number"))
	case ccOK && phoneOK && cc.str+phone.str != waID:
		fail("cc", Error{
			Status: http.StatusBadRequest, Code: CodeInvalidValue, Title: TitleInvalidValue,
			Details: fmt.Sprintf("cc, phone_number: together must be this account's wa_id %q, got %q + %q", waID, cc.str, phone.str),
		})
	}
	for _, k := range []string{"pin", "cert"} {
		if v, ok := obj[k]; ok && !bad[k] && v.kind != kindString {
			fail(k, InvalidValue(k, "must be a string", v))
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].path < errs[j].path })
		out := make(Errors, len(errs))
		for i, e := range errs {
			out[i] = e.err
		}
		return 0, out
	}
	return n, nil
}

// digits reports whether n is a string of min to max ASCII digits.
func digits(n *node, min, max int) bool {
	return n.kind == kindString && len(n.str) >= min && len(n.str) <= max && allDigits(n.str)
}

func pairMissing(missing, given string) Error {
	return Error{
		Status: http.StatusBadRequest, Code: CodeMissingParameter, Title: TitleMissingParameter,
		Details: fmt.Sprintf("%s: required parameter is missing (%s was given: the two come together, or neither for the short form)", missing, given),
	}
}
