import TaskQueue
