-- recon_exceptions (ageing): what finance and operations work from each morning.
--
-- Rule (DESIGN.md 4.6). One row per reconciliation key in an exception state today, plus one
-- row per key that was an exception on the previous committed day and is not one today.
--   exception states  order_fulfilment         STUCK, INCIDENCE, RETURNED, NO_EXPEDITION
--                     stock_coverage           SHORTFALL, NO_STOCK_RECORD
--                     remaining_payments       NO_AMOUNT, ORDER_NOT_FOUND, AMOUNT_MISMATCH
--                     remaining_payments_fees  AMOUNT_MISMATCH, NO_FEES_RECORD
--                     installation_readiness   LATE, AT_RISK, NO_APPOINTMENT
--   key           the reconciliation's key columns joined with '|' (a null part is empty)
--   change        NEW       an exception today, not on the previous committed day
--                 OPEN      the same exception state as then
--                 CHANGED   another exception state than then
--                 RESOLVED  an exception then, not today (state: today's state, null when
--                           the key is gone)
--   first_seen    the run date the unbroken run of exception days began: the previous
--                 row's first_seen when it was an exception then, else today
--   days_open     whole days from first_seen to the run date
--   amount        the money at stake (EUR, Decimal(38, 10); null where no money is at stake):
--                 fulfilment: the product's remaining_payment; payments: |difference|, else
--                 the courier amount, else the order amount; fees: |order - fees|, else the
--                 order amount; stock and readiness: null (their stake is in units, days).
--
-- Reads today's recon tables and `previous_exceptions`, the recon_exceptions of the previous
-- committed day (empty when there is none): never the full history. A skipped day changes
-- nothing: the previous committed day is the last one that ran, and first_seen carries over.
-- Parameters: :run_date (a DATE), :run_day (its days since 1970-01-01).
WITH states AS (
    SELECT 'order_fulfilment' AS reconciliation,
           CONCAT(order_id, '|', COALESCE(subscription_device_id, CONCAT('#', CAST(position AS VARCHAR)))) AS key,
           state,
           state IN ('STUCK', 'INCIDENCE', 'RETURNED', 'NO_EXPEDITION') AS exception,
           CAST(remaining_payment AS DECIMAL(38, 10)) AS amount
    FROM recon_order_fulfilment
    UNION ALL
    SELECT 'stock_coverage' AS reconciliation, product_code AS key, state,
           state IN ('SHORTFALL', 'NO_STOCK_RECORD') AS exception,
           CAST(NULL AS DECIMAL(38, 10)) AS amount
    FROM recon_stock_coverage
    UNION ALL
    SELECT 'remaining_payments' AS reconciliation,
           CONCAT(order_id_external, '|', reexpedition, '|', CAST(journey_index AS VARCHAR)) AS key,
           state,
           state IN ('NO_AMOUNT', 'ORDER_NOT_FOUND', 'AMOUNT_MISMATCH') AS exception,
           CAST(COALESCE(ABS(difference), courier_amount, order_amount) AS DECIMAL(38, 10)) AS amount
    FROM recon_remaining_payments
    UNION ALL
    SELECT 'remaining_payments_fees' AS reconciliation,
           CONCAT(order_id_external, '|', reexpedition, '|', CAST(journey_index AS VARCHAR)) AS key,
           fees_state AS state,
           fees_state IN ('AMOUNT_MISMATCH', 'NO_FEES_RECORD') AS exception,
           CAST(COALESCE(ABS(order_amount - fees_outstanding), order_amount) AS DECIMAL(38, 10)) AS amount
    FROM recon_remaining_payments
    WHERE fees_state IS NOT NULL
    UNION ALL
    SELECT 'installation_readiness' AS reconciliation, order_id AS key, state,
           state IN ('LATE', 'AT_RISK', 'NO_APPOINTMENT') AS exception,
           CAST(NULL AS DECIMAL(38, 10)) AS amount
    FROM recon_installation_readiness
),
today AS (
    SELECT reconciliation, key, state, amount FROM states WHERE exception
),
previous AS (
    SELECT reconciliation, key, state AS previous_state, first_seen, amount AS previous_amount
    FROM previous_exceptions
    WHERE change <> 'RESOLVED'
),
still AS (
    SELECT t.reconciliation, t.key, t.state, p.previous_state,
           CASE
               WHEN p.key IS NULL THEN 'NEW'
               WHEN p.previous_state = t.state THEN 'OPEN'
               ELSE 'CHANGED'
           END AS change,
           COALESCE(p.first_seen, :run_date) AS first_seen,
           t.amount
    FROM today t
    LEFT JOIN previous p ON p.reconciliation = t.reconciliation AND p.key = t.key
),
resolved AS (
    SELECT p.reconciliation, p.key, s.state, p.previous_state, 'RESOLVED' AS change, p.first_seen,
           COALESCE(s.amount, p.previous_amount) AS amount
    FROM previous p
    LEFT JOIN today t ON t.reconciliation = p.reconciliation AND t.key = p.key
    LEFT JOIN states s ON s.reconciliation = p.reconciliation AND s.key = p.key
    WHERE t.key IS NULL
)
SELECT reconciliation, key, state, previous_state, change, first_seen,
       :run_day - CAST(first_seen AS INTEGER) AS days_open, amount
FROM (SELECT * FROM still UNION ALL SELECT * FROM resolved) e
ORDER BY reconciliation, key
