-- Foundation marker: the numbered ranges per feature start after this one.
SELECT 1;
