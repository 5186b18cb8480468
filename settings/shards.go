package settings

// ShardCounts lists the shard counts a multiconnect cluster may have, the
// powers of two the seed allows. A function, so no caller can change it.
func ShardCounts() []int { return []int{1, 2, 4, 8, 16, 32} }

// ValidateShards reports a 1009 naming field "shards" when n is not one of
// ShardCounts.
func ValidateShards(n int) *Error {
	if inSet(ShardCounts(), n) {
		return nil
	}
	e := InvalidValue("shards", "must be one of 1, 2, 4, 8, 16, 32", n)
	return &e
}
