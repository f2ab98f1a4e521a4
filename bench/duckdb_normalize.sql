-- The normalize job of the benchmark, in DuckDB: seed-000 appointments (NDJSON) into
-- `appointments` (every role pivoted into a typed column, instants in UTC, personal data
-- dropped) and `appointment_parties` (every relatedParty pair), as zstd Parquet.
-- Parameters (replaced by bench/run.sh): {input}, {out}, {threads}.
SET threads = {threads};
SET preserve_insertion_order = false;
SET TimeZone = 'UTC';

-- Role names match like opslake's pivots: lower case, no '_', '-' or spaces.
CREATE MACRO norm(r) AS lower(regexp_replace(r, '[_\- ]', '', 'g'));
CREATE MACRO role(list, names) AS list_filter(list, lambda x: list_contains(names, norm(x.role)))[1].id;
CREATE MACRO characteristic(items, n) AS
    list_filter(flatten(list_transform(items, lambda i: i.resource.resourceCharacteristic)), lambda c: norm(c."name") = n)[1]."value";
-- ISO with a zone is an instant; without one it is Madrid wall time.
-- (read_json may already have typed a column as a timestamp: it is read back as text.)
CREATE MACRO utc(t) AS CASE
    WHEN t IS NULL THEN NULL
    WHEN regexp_matches(CAST(t AS VARCHAR), '(Z|[+-]\d\d(:?\d\d)?)$') THEN CAST(CAST(t AS VARCHAR) AS TIMESTAMPTZ)
    ELSE timezone('Europe/Madrid', CAST(replace(CAST(t AS VARCHAR), 'T', ' ') AS TIMESTAMP))
END;

CREATE TEMP TABLE src AS
SELECT id, externalId, category, description, status, creationDate, lastUpdate,
       relatedParty, relatedEntity, relatedPlace, resourceOrderItem, validFor
FROM read_json('{input}', format = 'newline_delimited', maximum_object_size = 16777216);

COPY (
    SELECT
        id AS appointment_id,
        externalId AS external_id,
        category, description, status,
        utc(creationDate) AS creation_date,
        utc(lastUpdate) AS last_update,
        utc(validFor.startDateTime) AS valid_for_start,
        utc(validFor.endDateTime) AS valid_for_end,
        relatedPlace.id AS related_place_id,
        relatedPlace.href AS related_place_href,
        relatedPlace.role AS related_place_role,
        role(relatedParty, ['scoringresult']) AS scoring_result,
        CAST(role(relatedParty, ['scoringlevel']) AS INTEGER) AS scoring_level,
        role(relatedParty, ['sellchannel']) AS sell_channel,
        role(relatedParty, ['userrole']) AS user_role,
        role(relatedParty, ['usercode']) AS user_code,
        role(relatedParty, ['segment']) AS segment,
        role(relatedParty, ['language']) AS language,
        role(relatedParty, ['tenant', 'tenantid']) AS tenant,
        CAST(role(relatedParty, ['duration', 'durationmin']) AS INTEGER) AS duration_min,
        role(relatedParty, ['zipcode', 'postcode']) AS zipcode,
        role(relatedParty, ['contract']) AS contract,
        CAST(role(relatedParty, ['delay']) AS INTEGER) AS delay,
        CAST(role(relatedParty, ['isnewappointment']) AS BOOLEAN) AS is_new_appointment,
        utc(split_part(role(relatedParty, ['validforappointment']), ' - ', 1)) AS valid_for_appointment_start,
        utc(split_part(role(relatedParty, ['validforappointment']), ' - ', 2)) AS valid_for_appointment_end,
        role(relatedEntity, ['workorder', 'workorderid']) AS work_order,
        role(relatedEntity, ['ordertype']) AS order_type,
        role(relatedEntity, ['connectioninstallationflow']) AS connection_installation_flow,
        role(relatedEntity, ['donoroperator']) AS donor_operator,
        role(relatedEntity, ['linkstate']) AS link_state,
        role(relatedEntity, ['ctopoledb']) AS cto_pole_db,
        characteristic(resourceOrderItem, 'type') AS type,
        characteristic(resourceOrderItem, 'territoryowner') AS territory_owner,
        characteristic(resourceOrderItem, 'tariff') AS tariff
    FROM src
) TO '{out}/appointments.parquet' (FORMAT parquet, COMPRESSION zstd);

COPY (
    SELECT appointment_id, position, role,
           -- Personal values are emptied, the row stays (as opslake's drop policy).
           CASE WHEN norm(role) IN ('firstname', 'middlename', 'lastname', 'surname', 'surnames', 'documentnumber',
                                    'documentid', 'email', 'emailaddress', 'phonenumber', 'phone', 'contactnumber')
                THEN NULL ELSE value END AS value
    FROM (
        SELECT id AS appointment_id,
               CAST(generate_subscripts(relatedParty, 1) - 1 AS INTEGER) AS position,
               unnest(relatedParty).role AS role,
               unnest(relatedParty).id AS value
        FROM src
    )
) TO '{out}/appointment_parties.parquet' (FORMAT parquet, COMPRESSION zstd);
