-- recon_device_terms: one row per order product (order_id, subscription_device_id) whose device
-- has a customer_devices record: do the order's invoice terms agree with the device's plan?
--
-- Rule (issue 13; the seeds: 004 Order.invoice, 003 Device.fees).
--   The pairs compared, order (invoice) against device (plan):
--     invoice_fee_amount       monthly_fee             (money, |difference| <= 0.01 EUR)
--     invoice_fee_duration     installment_duration    (whole months, equal)
--     invoice_residual_value   last_installment_fee    (money, |difference| <= 0.01 EUR)
--     invoice_initial_payment  upfront_fee             (money, |difference| <= 0.01 EUR)
--   The plan is the device's installment plan when any of its figures (monthly_fee,
--   unpaid_installments, last_installment_fee, installment_duration) is present, else its
--   final installment plan (the same choice as recon_remaining_payments); upfront_fee is the
--   device's own.
--   A pair is compared only when both sides are present: an unknown figure is never a
--   mismatch.
--   state = NO_TERMS        no pair could be compared
--         | TERMS_MISMATCH  a compared pair differs; differing_fields names each such
--                           invoice field (space separated, in the order above)
--         | MATCH
--
-- Decisions where the seeds are silent:
-- * The invoice terms belong to the order, so each device of an order is compared with them
--   (the orders of the seeds finance one device each).
-- * DISCARDED products are not compared (they are not demand, DESIGN.md 3).
--
-- Two steps: `device_plans` (each demanded device with its plan) is written and read back
-- before the orders' invoice terms are joined, so no step holds both joins at once.
CREATE TABLE device_plans AS
WITH plans AS (
    SELECT subscription_terminal_id AS subscription_device_id,
           upfront_fee,
           CASE WHEN installment_plan THEN monthly_fee ELSE final_monthly_fee END AS monthly_fee,
           CASE WHEN installment_plan THEN installment_duration ELSE final_installment_duration END AS installment_duration,
           CASE WHEN installment_plan THEN last_installment_fee ELSE final_last_installment_fee END AS last_installment_fee,
           CASE WHEN installment_plan THEN 'installment_plan' ELSE 'final_installment_plan' END AS plan
    FROM (
        SELECT *,
               (monthly_fee IS NOT NULL OR unpaid_installments IS NOT NULL
                OR last_installment_fee IS NOT NULL OR installment_duration IS NOT NULL) AS installment_plan
        FROM customer_devices
    ) d
)
SELECT p.order_id, p.subscription_device_id, d.plan,
       d.monthly_fee, d.installment_duration, d.last_installment_fee, d.upfront_fee
FROM order_products p
JOIN plans d ON d.subscription_device_id = p.subscription_device_id
WHERE COALESCE(p.status, '') <> 'DISCARDED';

WITH pairs AS (
    SELECT d.order_id, d.subscription_device_id, d.plan,
           o.invoice_fee_amount, d.monthly_fee,
           o.invoice_fee_duration, d.installment_duration,
           o.invoice_residual_value, d.last_installment_fee,
           o.invoice_initial_payment, d.upfront_fee,
           CASE WHEN o.invoice_fee_amount IS NULL OR d.monthly_fee IS NULL THEN NULL
                ELSE ABS(o.invoice_fee_amount - d.monthly_fee) > CAST('0.01' AS DECIMAL(38, 10)) END AS fee_amount_differs,
           CASE WHEN o.invoice_fee_duration IS NULL OR d.installment_duration IS NULL THEN NULL
                ELSE o.invoice_fee_duration <> d.installment_duration END AS fee_duration_differs,
           CASE WHEN o.invoice_residual_value IS NULL OR d.last_installment_fee IS NULL THEN NULL
                ELSE ABS(o.invoice_residual_value - d.last_installment_fee) > CAST('0.01' AS DECIMAL(38, 10)) END AS residual_differs,
           CASE WHEN o.invoice_initial_payment IS NULL OR d.upfront_fee IS NULL THEN NULL
                ELSE ABS(o.invoice_initial_payment - d.upfront_fee) > CAST('0.01' AS DECIMAL(38, 10)) END AS initial_differs
    FROM device_plans d
    LEFT JOIN orders o ON o.order_id = d.order_id
)
SELECT order_id, subscription_device_id, plan,
       invoice_fee_amount, monthly_fee,
       invoice_fee_duration, installment_duration,
       invoice_residual_value, last_installment_fee,
       invoice_initial_payment, upfront_fee,
       NULLIF(RTRIM(CONCAT(
           CASE WHEN fee_amount_differs THEN 'invoice_fee_amount ' ELSE '' END,
           CASE WHEN fee_duration_differs THEN 'invoice_fee_duration ' ELSE '' END,
           CASE WHEN residual_differs THEN 'invoice_residual_value ' ELSE '' END,
           CASE WHEN initial_differs THEN 'invoice_initial_payment ' ELSE '' END
       )), '') AS differing_fields,
       CASE
           WHEN fee_amount_differs IS NULL AND fee_duration_differs IS NULL
                AND residual_differs IS NULL AND initial_differs IS NULL THEN 'NO_TERMS'
           WHEN COALESCE(fee_amount_differs, FALSE) OR COALESCE(fee_duration_differs, FALSE)
                OR COALESCE(residual_differs, FALSE) OR COALESCE(initial_differs, FALSE) THEN 'TERMS_MISMATCH'
           ELSE 'MATCH'
       END AS state
FROM pairs
