// Package coord holds the coordination rules of the settings store
// (DESIGN.md rules 2 and 3): who gets the master lease and at which epoch,
// who may give it up, and which shard-map writes the lease fences out. Every
// store backend (bbolt today, others later) calls these same functions, so
// the rules cannot differ between backends; a backend only loads the
// current lease and map, asks coord, persists what coord decided, and
// publishes it.
//
// It is pure: no I/O, no goroutines, no clock. Time is always the caller's
// (the now argument), so a test, the simulator and the real service all
// decide the same way from the same inputs. The caller is a store, which
// picks the clock: bbolt (one process) passes its own caller's time; the
// PostgreSQL store passes the database's, so that settings processes
// sharing it decide by one clock however theirs differ.
//
// # The rules
//
// Acquire. A lapsed lease (free, or its expiry not after now) goes to the
// asking master at Epoch+1, even if that master held it before it lapsed:
// in between another master may have acted on the gap, so the old epoch is
// not trusted. The live holder, the same master id and incarnation, renews:
// same epoch, Expires = now+ttl, address updated. Anyone else is refused
// and told the current lease; that includes the holder's id with another
// incarnation (a restarted master whose old process may be paused rather
// than dead waits for the lease to lapse like any other master).
//
// Release. Only the holder at exactly the current epoch may release; the
// epoch is kept, so the next holder gets a larger one.
//
// Shard-map writes. Admitted only from the holder at exactly its lease
// epoch, with the lease not lapsed at now, for a well-formed map whose
// max_epoch does not go below the stored one.
package coord
