package fs_spark;

import java.io.Serializable;
import java.util.Iterator;
import java.util.List;

import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction2;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.catalyst.expressions.UnsafeRow;
import org.apache.spark.sql.classic.Dataset;
import org.apache.spark.sql.classic.SparkSession;
import org.apache.spark.sql.execution.QueryExecution;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructType;

/**
 * The merge step of fs_spark's point-in-time join, run in the JVM.
 *
 * <p>Both inputs arrive hash-partitioned by key into the same number of partitions and sorted
 * within each partition: the entity rows by (key, time), the feature rows by (key, time, write),
 * keys ascending with nulls first, as Spark's {@code sortWithinPartitions} sorts them. One pass
 * over each pair of partitions then gives every entity row the last feature row of each side
 * whose (key, time) is not above its own: the latest row at or before its time, the later write
 * on a tie. Memory is one feature row per side, whatever the history of a key.
 */
public final class AsOfMerge {

    private AsOfMerge() {
    }

    /**
     * The entity rows with the outputs of every side, as a DataFrame.
     *
     * @param left the entity rows, partitioned and sorted as above
     * @param right the feature rows of every side, partitioned and sorted as above
     * @param leftKeys the entity's key columns, of the same types as {@code rightKeys}
     * @param rightKeys the feature rows' key columns
     * @param rightSide the feature rows' column that numbers their side (lookup), from 0
     * @param columns per side, the feature columns of each output
     * @param tolerances per side, the lookback in microseconds, or -1 for none
     * @param schema the result: the entity columns in {@code left}'s order, then each side's
     *     outputs, then a "found" flag for each side listed in {@code flagged}
     */
    public static Dataset<Row> join(
            Dataset<Row> left, Dataset<Row> right,
            List<String> leftKeys, String leftTime, int entityColumns,
            List<String> rightKeys, String rightTime, String rightSide,
            List<List<String>> columns, List<? extends Number> tolerances, List<? extends Number> flagged, String schema) {
        StructType leftSchema = left.schema();
        StructType rightSchema = right.schema();
        int sides = columns.size();
        int[][] slots = new int[sides][];
        DataType[][] slotTypes = new DataType[sides][];
        for (int s = 0; s < sides; s++) {
            slots[s] = new int[columns.get(s).size()];
            slotTypes[s] = new DataType[slots[s].length];
            for (int i = 0; i < slots[s].length; i++) {
                slots[s][i] = rightSchema.fieldIndex(columns.get(s).get(i));
                slotTypes[s][i] = rightSchema.fields()[slots[s][i]].dataType();
            }
        }
        long[] lookbacks = new long[sides];
        boolean[] flags = new boolean[sides];
        for (int s = 0; s < sides; s++) {
            lookbacks[s] = tolerances.get(s).longValue();
        }
        for (Number s : flagged) {
            flags[s.intValue()] = true;
        }
        DataType[] entityTypes = new DataType[entityColumns];
        for (int i = 0; i < entityColumns; i++) {
            entityTypes[i] = leftSchema.fields()[i].dataType();
        }
        Merge merge = new Merge(
                new Keys(ordinals(leftSchema, leftKeys), ordinals(rightSchema, rightKeys), types(rightSchema, rightKeys)),
                leftSchema.fieldIndex(leftTime), entityTypes, rightSchema.fieldIndex(rightTime),
                rightSchema.fieldIndex(rightSide), types(rightSchema, List.of(rightSchema.fieldNames())), slots, slotTypes, lookbacks, flags);

        SparkSession session = left.sparkSession();
        // Each input's RDD comes from its plan prepared without adaptive execution: with it,
        // asking for the RDD would run the shuffles at once instead of when the result is used.
        JavaRDD<InternalRow> lefts = rows(session, left);
        JavaRDD<InternalRow> rights = rows(session, right);
        if (lefts.getNumPartitions() != rights.getNumPartitions()) {
            throw new IllegalArgumentException("the entity and feature rows must have the same number of partitions ("
                    + lefts.getNumPartitions() + " and " + rights.getNumPartitions() + ")");
        }
        RDD<InternalRow> merged = lefts.zipPartitions(rights, merge).rdd();
        return session.internalCreateDataFrame(merged, (StructType) DataType.fromJson(schema), false);
    }

    private static JavaRDD<InternalRow> rows(SparkSession session, Dataset<Row> frame) {
        return QueryExecution.prepareExecutedPlan(session, frame.queryExecution().sparkPlan()).execute().toJavaRDD();
    }

    private static int[] ordinals(StructType schema, List<String> names) {
        int[] result = new int[names.size()];
        for (int i = 0; i < result.length; i++) {
            result[i] = schema.fieldIndex(names.get(i));
        }
        return result;
    }

    private static DataType[] types(StructType schema, List<String> names) {
        DataType[] result = new DataType[names.size()];
        for (int i = 0; i < result.length; i++) {
            result[i] = schema.fields()[schema.fieldIndex(names.get(i))].dataType();
        }
        return result;
    }

    /**
     * The key columns of both sides (int, long or string, the types feature table keys may
     * have), compared as Spark sorts them: ascending, nulls first, strings by their bytes.
     */
    static final class Keys implements Serializable {
        private static final long serialVersionUID = 1L;
        private final int[] left;
        private final int[] right;
        private final DataType[] types;

        Keys(int[] left, int[] right, DataType[] types) {
            for (DataType type : types) {
                if (!(type instanceof LongType || type instanceof IntegerType || type instanceof StringType)) {
                    throw new IllegalArgumentException("a key must be int, long or string, not " + type.simpleString());
                }
            }
            this.left = left;
            this.right = right;
            this.types = types;
        }

        boolean anyNull(InternalRow entity) {
            for (int ordinal : left) {
                if (entity.isNullAt(ordinal)) {
                    return true;
                }
            }
            return false;
        }

        /** The order of a feature row's key against an entity row's key with no null part. */
        int compare(InternalRow feature, InternalRow entity) {
            for (int i = 0; i < left.length; i++) {
                if (feature.isNullAt(right[i])) {
                    return -1;
                }
                int order;
                if (types[i] instanceof LongType) {
                    order = Long.compare(feature.getLong(right[i]), entity.getLong(left[i]));
                } else if (types[i] instanceof IntegerType) {
                    order = Integer.compare(feature.getInt(right[i]), entity.getInt(left[i]));
                } else {
                    order = feature.getUTF8String(right[i]).binaryCompare(entity.getUTF8String(left[i]));
                }
                if (order != 0) {
                    return order;
                }
            }
            return 0;
        }
    }

    /** The merge of one partition of entity rows with the same partition of feature rows. */
    static final class Merge implements FlatMapFunction2<Iterator<InternalRow>, Iterator<InternalRow>, InternalRow> {
        private static final long serialVersionUID = 1L;
        private final Keys keys;
        private final int leftTime;
        private final DataType[] entityTypes;
        private final int rightTime;
        private final int rightSide;
        private final DataType[] rightTypes;
        private final int[][] slots;
        private final DataType[][] slotTypes;
        private final long[] lookbacks;
        private final boolean[] flags;

        Merge(Keys keys, int leftTime, DataType[] entityTypes, int rightTime, int rightSide, DataType[] rightTypes,
              int[][] slots, DataType[][] slotTypes, long[] lookbacks, boolean[] flags) {
            this.keys = keys;
            this.leftTime = leftTime;
            this.entityTypes = entityTypes;
            this.rightTime = rightTime;
            this.rightSide = rightSide;
            this.rightTypes = rightTypes;
            this.slots = slots;
            this.slotTypes = slotTypes;
            this.lookbacks = lookbacks;
            this.flags = flags;
        }

        @Override
        public Iterator<InternalRow> call(Iterator<InternalRow> lefts, Iterator<InternalRow> rights) {
            int sides = slots.length;
            int width = entityTypes.length;
            for (int s = 0; s < sides; s++) {
                width += slots[s].length + (flags[s] ? 1 : 0);
            }
            int outputWidth = width;
            UnsafeProjection toUnsafe = UnsafeProjection.create(rightTypes);
            return new Iterator<>() {
                private InternalRow next = advance();
                private final UnsafeRow[] last = new UnsafeRow[sides];

                private InternalRow advance() {
                    return rights.hasNext() ? rights.next() : null;
                }

                @Override
                public boolean hasNext() {
                    return lefts.hasNext();
                }

                @Override
                public InternalRow next() {
                    InternalRow entity = lefts.next();
                    boolean valid = !entity.isNullAt(leftTime) && !keys.anyNull(entity);
                    long time = valid ? entity.getLong(leftTime) : 0L;
                    if (valid) {
                        while (next != null && before(next, entity, time)) {
                            int side = next.getInt(rightSide);
                            if (last[side] == null) {
                                last[side] = new UnsafeRow(rightTypes.length);
                                last[side].pointTo(new byte[64], 64);
                            }
                            last[side].copyFrom(next instanceof UnsafeRow u ? u : toUnsafe.apply(next));
                            next = advance();
                        }
                    }
                    Object[] values = new Object[outputWidth];
                    int at = 0;
                    for (int i = 0; i < entityTypes.length; i++) {
                        values[at++] = entity.get(i, entityTypes[i]);
                    }
                    boolean[] hits = new boolean[sides];
                    for (int s = 0; s < sides; s++) {
                        UnsafeRow found = last[s];
                        hits[s] = valid && found != null && keys.compare(found, entity) == 0
                                && (lookbacks[s] < 0 || time - found.getLong(rightTime) <= lookbacks[s]);
                        for (int i = 0; i < slots[s].length; i++) {
                            values[at++] = hits[s] ? found.get(slots[s][i], slotTypes[s][i]) : null;
                        }
                    }
                    for (int s = 0; s < sides; s++) {
                        if (flags[s]) {
                            values[at++] = hits[s];
                        }
                    }
                    return new GenericInternalRow(values);
                }

                /** Whether a feature row's (key, time) is not above the entity row's. */
                private boolean before(InternalRow feature, InternalRow entity, long time) {
                    int order = keys.compare(feature, entity);
                    return order < 0 || (order == 0 && feature.getLong(rightTime) <= time);
                }
            };
        }
    }
}
