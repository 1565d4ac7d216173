-- The number of articles per tag (issue 12): a tag filter without a text
-- query reads its total here instead of counting the tag's range of
-- `article_tags_newest` (about 40,000 entries, 8 ms, for a tag on 4 % of a
-- million articles).
--
-- Every write that changes tags adds its deltas in the same transaction, as
-- part of its commit tail: after it has taken the `article_seq` row (see
-- postgres.rs), so the tag rows are only ever locked by the one writer that
-- holds the counter row. No deadlock, and no writer waits on them longer
-- than it already waits on the counter. A snapshot that sees a write sees
-- its deltas.
--
-- A tag whose count drops to 0 keeps its row (with 0): deleting it would
-- only make the next article with that tag insert it again. (No CHECK that
-- a count stays >= 0: PostgreSQL checks the row an INSERT ... ON CONFLICT
-- proposes, a negative delta, before it finds the conflict.)
--
-- Replicas of an older version do not keep it: upgrade every replica past
-- this migration before writing through it again.
CREATE TABLE tag_counts (
    tag      TEXT   PRIMARY KEY,
    articles BIGINT NOT NULL
);

INSERT INTO tag_counts (tag, articles)
SELECT tag, COUNT(*) FROM article_tags GROUP BY tag;
