-- visage SQLite schema, version 8: a face's embedding length is checked against its model's
-- by the store's own code, once per model and write, instead of by row triggers. A trigger
-- that can RAISE makes every face insert open a statement savepoint, whose cost grew with
-- the transaction: importing 10^6 faces took 273.6 s with the triggers and 37.3 s without.
DROP TRIGGER faces_model_dimension_insert;
DROP TRIGGER faces_model_dimension_update;
