DROP TABLE cases;
DROP TABLE rectifications;
DROP TABLE inspection_inspectors;
DROP TABLE inspections;
