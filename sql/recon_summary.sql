-- recon_summary: one row per reconciliation and state, with counts and amounts.
--
--   reconciliation        state        count    amount (EUR)                    quantity
--   order_fulfilment      its states   products remaining_payment of them      units
--   stock_coverage        its states   codes    -                              shortfall units
--   remaining_payments    its states   journeys courier amount (EUR only)      -
--   remaining_payments_fees fees_state journeys fees outstanding               -
--   installation_readiness its states  orders   -                              devices
--   device_terms          its states   devices  -                              -
-- Amounts of CURRENCY_NOT_EUR journeys are left out: they are never summed with euros.
-- Ordered by reconciliation and state, as the terminal prints it.
SELECT 'order_fulfilment' AS reconciliation, state,
       COUNT(*) AS count,
       CAST(SUM(remaining_payment) AS DECIMAL(38, 10)) AS amount,
       CAST(SUM(quantity) AS BIGINT) AS quantity
FROM recon_order_fulfilment
GROUP BY state
UNION ALL
SELECT 'stock_coverage' AS reconciliation, state, COUNT(*) AS count,
       CAST(NULL AS DECIMAL(38, 10)) AS amount, CAST(SUM(shortfall) AS BIGINT) AS quantity
FROM recon_stock_coverage
GROUP BY state
UNION ALL
SELECT 'remaining_payments' AS reconciliation, state, COUNT(*) AS count,
       CAST(SUM(CASE WHEN currency = 'EUR' THEN courier_amount END) AS DECIMAL(38, 10)) AS amount,
       CAST(NULL AS BIGINT) AS quantity
FROM recon_remaining_payments
GROUP BY state
UNION ALL
SELECT 'remaining_payments_fees' AS reconciliation, fees_state AS state, COUNT(*) AS count,
       CAST(SUM(fees_outstanding) AS DECIMAL(38, 10)) AS amount, CAST(NULL AS BIGINT) AS quantity
FROM recon_remaining_payments
WHERE fees_state IS NOT NULL
GROUP BY fees_state
UNION ALL
SELECT 'installation_readiness' AS reconciliation, state, COUNT(*) AS count,
       CAST(NULL AS DECIMAL(38, 10)) AS amount, CAST(SUM(devices) AS BIGINT) AS quantity
FROM recon_installation_readiness
GROUP BY state
UNION ALL
SELECT 'device_terms' AS reconciliation, state, COUNT(*) AS count,
       CAST(NULL AS DECIMAL(38, 10)) AS amount, CAST(NULL AS BIGINT) AS quantity
FROM recon_device_terms
GROUP BY state
ORDER BY reconciliation, state NULLS LAST
