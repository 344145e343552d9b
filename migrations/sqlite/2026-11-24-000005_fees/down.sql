DROP TABLE payments;
DROP TABLE fee_assessments;
DROP TABLE fee_rates;
