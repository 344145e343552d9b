DROP TABLE withdrawals;
DROP TABLE permits;
DROP TABLE water_zones;
